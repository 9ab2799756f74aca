"""``python -m agent.cli`` runs the ``decisionops`` command."""

from agent.cli import main

main()
