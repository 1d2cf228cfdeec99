"""``python -m comp`` runs the CLI."""

from comp.cli.main import main

main()
