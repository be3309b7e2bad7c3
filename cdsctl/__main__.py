"""`python -m cdsctl` runs the command line."""

from cdsctl.cli import app

app()
