"""``python -m agent.cli`` runs the ``decisionops`` command."""

from decisionops.agent.cli import main

main()
