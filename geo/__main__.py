"""``python -m geo`` runs the ``minewatch`` command."""

from geo.cli.main import main

main()
