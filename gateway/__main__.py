"""`python -m gateway` is `kodogate`."""

from gateway.cli import main

main()
