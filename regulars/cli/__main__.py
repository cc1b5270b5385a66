"""`python -m regulars.cli`: the command line without the installed `regulars` script."""

from regulars.cli import app

app()
