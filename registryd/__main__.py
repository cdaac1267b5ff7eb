"""`python -m registryd` runs the registry daemon."""

from registryd.cli import main

main()
