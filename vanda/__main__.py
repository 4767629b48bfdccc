"""`python -m vanda` is the same CLI as the `vanda` command."""

from vanda.cli import app

app()
