"""``python -m finwatch`` runs the command line."""

from finwatch.cli import app

app()
