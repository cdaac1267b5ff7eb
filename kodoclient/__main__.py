"""`python -m kodoclient`: the CLI, for checkouts where the console scripts are not installed."""

from kodoclient.cli import main

main(prog_name="kodoclient")
