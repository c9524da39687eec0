"""``python -m rspfed`` runs the ``rspfed`` command line."""

from rspfed.cli import main

main()
