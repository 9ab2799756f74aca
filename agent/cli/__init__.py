"""The ``decisionops`` command line: noun groups with verbs.

::

    decisionops demo                      the whole loop on the bundled sample data
    decisionops ingest FILE --kind churn  add predictions from CSV/JSONL/MLflow/KServe bodies
    decisionops run --once                triage, start decisions, apply answered approvals
    decisionops approvals list|show|approve|edit|reject|revise
    decisionops decisions list|show
    decisionops ledger verify|list
    decisionops db upgrade|current
"""

from __future__ import annotations

import sys

import typer

from agent.cli import approvals, db, decisions, demo, ledger, work
from agent.cli._common import exit_for
from agent.errors import DecisionOpsError

__all__ = ["app", "main"]

app = typer.Typer(
    name="decisionops", no_args_is_help=True, add_completion=False,
    help="From a model's prediction to coordinated, approved, executed action.\n\n"
         "Example: decisionops demo",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("demo")(demo.demo)
app.command("ingest")(work.ingest)
app.command("run")(work.run)
app.add_typer(approvals.app, name="approvals")
app.add_typer(decisions.app, name="decisions")
app.add_typer(ledger.app, name="ledger")
app.add_typer(db.app, name="db")


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=True)
    except DecisionOpsError as exc:
        raise SystemExit(exit_for(exc).exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
