"""The ``decisionops`` command line: noun groups with verbs.

::

    decisionops demo                      the whole loop on the bundled sample data
    decisionops ingest FILE --kind churn  add predictions from CSV/JSONL/Parquet/MLflow/KServe, streamed
    decisionops ingest RESPONSE --inputs scored.csv --entity-column id   join a server's scores
    decisionops playbooks list            each playbook: kinds, trigger, functions
    decisionops tools list [--json]       each tool: source, functions allowing it, schema
    decisionops run --once                triage, start decisions, apply answered approvals
    decisionops approvals list|show|approve|edit|reject|revise
    decisionops decisions list|show
    decisionops predictions list|show|queue|pick|supply-value|dismiss   every prediction's outcome
    decisionops ledger verify|prove-row|anchor|list|archive
    decisionops holds add|list|release    pause acting on an entity, playbook or function
    decisionops db upgrade|current
    decisionops plan explain DECISION     how a plan was drafted (prompt, model output, cost)
    decisionops eval --planner playbook,llm,hybrid   score planners on scenario cases
    decisionops serve                     the HTTP API, web inbox and ops chat on :8400
    decisionops users add|list|token|revoke   API users and their tokens
    decisionops chat                      the ops chat in the terminal
    decisionops outcomes import|import-sql|add|list
    decisionops report --since 30d --out report.html
    decisionops export outcomes --format parquet|csv --out FILE
    decisionops --version
    decisionops --install-completion     shell completion (bash, zsh, fish, PowerShell)
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import typer

from decisionops.agent.cli import (
    approvals,
    db,
    decisions,
    demo,
    export,
    holds,
    ingest,
    ledger,
    notifications,
    outcomes,
    playbooks,
    policy,
    predictions,
    report,
    toolbox,
    work,
)
from decisionops.agent.cli import chat as chat_cli
from decisionops.agent.cli import eval as eval_cli
from decisionops.agent.cli import plan as plan_cli
from decisionops.agent.cli import serve as serve_cli
from decisionops.agent.cli import users as users_cli
from decisionops.agent.cli._common import (
    JSON_ERRORS,
    OPTIONS_GIVEN,
    exit_for,
    fail,
    log_to_stderr,
)
from decisionops.agent.errors import DecisionOpsError, cannot_write

__all__ = ["app", "main"]

app = typer.Typer(
    name="decisionops", no_args_is_help=True, add_completion=True, rich_markup_mode="markdown",
    help="From a model's prediction to coordinated, approved, executed action.\n\n"
         "Example: decisionops demo",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        try:
            shown = package_version("decisionops")
        except PackageNotFoundError:  # run from a source tree that was never installed
            shown = "unknown"
        typer.echo(f"decisionops {shown}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the installed version and exit.")) -> None:
    """From a model's prediction to coordinated, approved, executed action.

    Example: decisionops demo
    """


app.command("demo")(demo.demo)
app.command("ingest")(ingest.ingest)
app.command("run")(work.run)
app.add_typer(approvals.app, name="approvals")
app.add_typer(decisions.app, name="decisions")
app.add_typer(predictions.app, name="predictions")
app.add_typer(ledger.app, name="ledger")
app.add_typer(holds.app, name="holds")
app.add_typer(notifications.app, name="notifications")
app.add_typer(playbooks.app, name="playbooks")
app.add_typer(policy.app, name="policy")
app.add_typer(toolbox.app, name="tools")
app.add_typer(db.app, name="db")
app.add_typer(plan_cli.app, name="plan")
app.command("eval")(eval_cli.eval_)
app.command("serve")(serve_cli.serve)
app.add_typer(users_cli.app, name="users")
app.command("chat")(chat_cli.chat)
app.add_typer(outcomes.app, name="outcomes")
app.command("report")(report.report)
app.add_typer(export.app, name="export")


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    given = args[:args.index("--")] if "--" in args else args
    as_json = "--json" in given
    token = JSON_ERRORS.set(as_json)
    options = OPTIONS_GIVEN.set(frozenset(a.partition("=")[0] for a in given
                                          if a.startswith("--")))
    log_to_stderr()
    # Built once: the check below and the parser read the same commands (building them
    # is most of the CLI's start-up).
    command = typer.main.get_command(app)
    try:
        if (misplaced := _option_for_a_value(command, given)) is not None:
            option, other = misplaced
            raise SystemExit(fail(f"{option} needs a value: {other!r} is an option of this "
                                  f"command (for that text, write {option}={other})",
                                  status=400, field=option).exit_code)
        if not as_json:
            # A fixed program name: completion reads _DECISIONOPS_COMPLETE however it was started.
            command(args=args, prog_name="decisionops", standalone_mode=True)
        else:
            _json_main(command, args)
    except DecisionOpsError as exc:
        raise SystemExit(exit_for(exc).exit_code) from None
    except Exception as exc:
        if (said := cannot_write(exc)) is None:
            raise
        raise SystemExit(fail(said, 1, status=503).exit_code) from None
    finally:
        JSON_ERRORS.reset(token)
        OPTIONS_GIVEN.reset(options)


def _json_main(command: Any, args: Sequence[str]) -> None:
    """``main`` for a command line that asked for ``--json``: what the parser refuses (an
    unknown option, a value of the wrong type, a missing argument) is said as JSON on
    stdout too, naming the option, like every other refusal (``_common.fail``)."""
    try:
        result = command(args=list(args), prog_name="decisionops", standalone_mode=False)
    except typer.Abort:
        raise SystemExit(fail("aborted", 1).exit_code) from None
    except typer.TyperException as exc:  # click's UsageError (exit code 2) and the others
        usage = exc.exit_code == 2
        raise SystemExit(fail(exc.format_message(), exc.exit_code,
                              status=400 if usage else None,
                              field=_option(exc) if usage else None).exit_code) from None
    raise SystemExit(result if isinstance(result, int) else 0)


def _option_for_a_value(command: Any, args: Sequence[str]) -> tuple[str, str] | None:
    """The first option of the command the line names that is followed by another of its
    options, where its value belongs: ``holds add X --reason --json`` would take "--json"
    for the reason (the parser takes any next word as an option's value) and place the
    hold. Said as the parser's refusals are; ``--reason=--json`` still means that text."""
    for word in args:  # down the groups the line names (``holds``, then ``add``)
        command = getattr(command, "commands", {}).get(word, command)
    valued: set[str] = set()
    names = {"--help", "-h"}
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts + param.secondary_opts)
            if not param.is_flag and not param.count:
                valued.update(param.opts)
    return next(((option, following) for option, following in itertools.pairwise(args)
                 if option in valued and following in names), None)


def _option(exc: typer.TyperException) -> str | None:
    """The option or argument a parser error is about (``--max-rows``, ``PATH``)."""
    name = getattr(exc, "option_name", None)
    if isinstance(name, str):
        return name
    param = getattr(exc, "param", None)
    kind = getattr(param, "param_type_name", None)
    if kind == "option" and param.opts:
        return str(max(param.opts, key=len))
    if kind == "argument":
        return str(getattr(param, "metavar", None) or param.name.upper())
    return None


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
