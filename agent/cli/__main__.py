"""``python -m agent.cli`` runs the ``decisionops`` command."""

from decisionops.agent.cli import main

if __name__ == "__main__":  # not when a worker process imports it
    main()
