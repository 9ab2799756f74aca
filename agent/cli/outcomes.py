"""``decisionops outcomes``: record what happened after a decision (or after the holdout's
deliberate non-decision), and list recorded outcomes.

Exit codes of ``import``: 0 every row recorded (or already recorded), 1 some rows were
not recorded (each is listed with its row number and reason; the others were recorded),
2 the input as a whole is unusable or an option is wrong (nothing recorded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from decisionops.agent.cli._common import (
    console,
    err_console,
    fail,
    limited,
    print_json,
    print_table,
    say_more,
    settings,
)
from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import utcnow
from decisionops.agent.report import (
    OutcomeImport,
    parse_since,
    read_outcome_file,
    read_outcome_sql,
    record_parsed,
)
from decisionops.agent.report._rows import parse_records
from decisionops.agent.roles import may, roles_that
from decisionops.agent.store import Store

__all__ = ["app", "open_store"]

app = typer.Typer(no_args_is_help=True, help=(
    "Outcomes: what later happened to an entity, for decisions and for the control group.\n\n"
    "Example: decisionops outcomes import outcomes.csv\n\n"
    "Example: decisionops outcomes add --decision dec_5a1c… --label retained --value 1200"))

_SHOWN = 50
_OPTION_OF = {"decision_id": "--decision", "prediction_id": "--prediction", "kind": "--kind",
              "entity_id": "--entity", "label": "--label", "value_realized": "--value",
              "observed_at": "--at", "note": "--note"}

Window = Annotated[int, typer.Option(
    "--window-days", min=1, max=3650,
    help="Match an outcome to a prediction observed at most this many days before it.")]
As = Annotated[str | None, typer.Option("--as", help="The registered user who records (an "
                                         "operator, ingest or admin user; default: "
                                         "cli:$USER).")]
Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@contextmanager
def open_store() -> Iterator[Store]:
    """The store named by the settings (migrated to head), without the rest of the runtime."""
    store = Store.open(settings().resolved_database_url)
    try:
        yield store
    finally:
        store.close()


def _actor(store: Store, given: str | None) -> str:
    """Who the ledger says recorded: ``cli:$USER`` (the shell's user), or the registered,
    enabled user ``--as`` names, whose role may record outcomes."""
    if given is None:
        return f"cli:{os.environ.get('USER') or 'unknown'}"
    try:
        user = store.users.named(given)
    except InvalidInputError as exc:
        raise fail(f"--as: {exc.message.removeprefix('name: ')}") from None
    if user is None:
        raise fail(f"--as: {given!r} is not a registered user; add one with decisionops users "
                   f"add {given} --role operator (or leave --as out: cli:$USER records)")
    if user["disabled_at"] is not None:
        raise fail(f"--as: user {user['name']!r} is disabled")
    if not may(user["role"], "outcomes"):
        raise fail(f"--as: {user['name']} is {'an' if user['role'][0] in 'aeiou' else 'a'} "
                   f"{user['role']}; outcomes are recorded by "
                   f"{', '.join(roles_that('outcomes'))} users")
    return str(user["name"])


def _show(result: OutcomeImport, as_json: bool) -> None:
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        console.print(f"{result.source}: {result.rows_read} rows → {len(result.recorded)} recorded "
                      f"({result.treated} treated, {result.control} control), "
                      f"{len(result.duplicates)} already recorded, "
                      f"{len(result.unmatched)} problem(s)", highlight=False)
        print_table("rows not recorded", ["row", "line", "field", "reason", "value"],
                    [[u.row, u.line, u.field, u.reason, u.value]
                     for u in result.unmatched[:_SHOWN]], empty="every row recorded")
        if len(result.unmatched) > _SHOWN:
            err_console.print(f"… and {len(result.unmatched) - _SHOWN} more (use --json)")
    if result.unmatched:
        raise typer.Exit(1)


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="CSV (header row) or JSON Lines file.",
                                         dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto, csv or jsonl.")] = "auto",
    window: Window = 90,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Record outcomes from a CSV or JSON Lines file.

    Each row names decision_id, prediction_id, or kind and
    entity_id, plus label, value_realized (or value), observed_at and optionally note. A
    kind+entity row is matched to that entity's latest acted-on or held-out prediction
    observed within --window-days before the outcome. Rows that match nothing are
    listed with the reason; re-importing the same file records nothing new.

    Example: decisionops outcomes import outcomes.csv --window-days 60

    Example file (CSV):

        kind,entity_id,label,value_realized,observed_at
        churn,ACC-10004,retained,49500,2026-12-15T00:00:00Z
    """
    if fmt not in ("auto", "csv", "jsonl"):
        raise fail(f"--format: {fmt!r} is not one of auto, csv, jsonl")
    if not path.is_file():
        raise fail(f"FILE: {path} is not a readable file")
    parsed = read_outcome_file(path, fmt)  # type: ignore[arg-type]
    with open_store() as store:
        result = record_parsed(store, parsed, source=f"file:{path.name}", actor=_actor(store, actor),
                               window=timedelta(days=window))
    _show(result, as_json)


@app.command("import-sql")
def import_sql(
    query: Annotated[str, typer.Option("--query", help="A SELECT whose columns are named like "
                                       "a file's (label, observed_at, kind, entity_id, …).")],
    url_env: Annotated[str, typer.Option(
        "--url-env", help="Environment variable holding the SQLAlchemy URL of the database to "
        "read (kept out of the command line and shell history).")] = "DECISIONOPS_OUTCOMES_URL",
    window: Window = 90,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Record outcomes from a SQL query on another database (read-only).

    Example: DECISIONOPS_OUTCOMES_URL=postgresql+psycopg://… decisionops outcomes import-sql
             --query "select account_id as entity_id, 'churn' as kind, status as label,
             revenue as value, closed_at as observed_at from renewals"
    """
    url = os.environ.get(url_env)
    if not url:
        raise fail(f"--url-env: the environment variable {url_env} is not set")
    try:
        parsed = read_outcome_sql(url, query)
    except InvalidInputError as exc:
        option = "--url-env" if exc.field == "url" else "--query"
        raise fail(f"{option}: {exc.message.removeprefix(f'{exc.field}: ')}") from None
    with open_store() as store:
        result = record_parsed(store, parsed, source=f"sql:{url_env}", actor=_actor(store, actor),
                               window=timedelta(days=window))
    _show(result, as_json)


@app.command("add")
def add(
    label: Annotated[str, typer.Option("--label", help="What happened: retained, churned, "
                                       "failure_avoided, …")],
    decision: Annotated[str | None, typer.Option("--decision", help="Decision id.")] = None,
    prediction: Annotated[str | None, typer.Option(
        "--prediction", help="Prediction id (for a held-out, control-group prediction).")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Prediction kind (with --entity).")
                    ] = None,
    entity: Annotated[str | None, typer.Option("--entity", help="Entity id (with --kind).")
                      ] = None,
    value: Annotated[float, typer.Option("--value", help="Value realized.")] = 0.0,
    at: Annotated[str | None, typer.Option(
        "--at", help="When it was observed, ISO-8601 (default: now).")] = None,
    note: Annotated[str, typer.Option("--note", help="Free text.")] = "",
    window: Window = 90,
    actor: As = None,
    as_json: Json = False,
) -> None:
    """Record one outcome.

    Example: decisionops outcomes add --decision dec_5a1c… --label retained --value 1200

    Example: decisionops outcomes add --kind failure --entity AST-CMP-0003
             --label failure_avoided --value 316100 --at 2026-12-01T08:00:00Z
    """
    record: dict[str, Any] = {"decision_id": decision, "prediction_id": prediction,
                              "kind": kind, "entity_id": entity, "label": label,
                              "value_realized": value, "note": note,
                              "observed_at": at or utcnow().isoformat()}
    good, bad = parse_records([(None, record)])
    if bad:
        raise fail(_problem(bad[0].field, bad[0].reason))
    with open_store() as store:
        result = record_parsed(store, (good, bad), source="cli", actor=_actor(store, actor),
                               window=timedelta(days=window))
    if result.unmatched:
        problem = result.unmatched[0]
        raise fail(_problem(problem.field, problem.reason))
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if result.duplicates:
        console.print(f"already recorded: {result.duplicates[0]}")
    else:
        arm = "treated" if result.treated else "control"
        console.print(f"recorded {result.recorded[0]} ({arm})")


def _problem(field: str | None, reason: str) -> str:
    if field in _OPTION_OF:
        return f"{_OPTION_OF[field]}: {reason}"
    return f"--decision, --prediction, or --kind and --entity: {reason}"


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this prediction kind.")] = None,
    arm: Annotated[str | None, typer.Option("--arm", help="treated or control.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Observed since: 7d, 30d, 12h or an ISO date.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 50,
    as_json: Json = False,
) -> None:
    """List recorded outcomes, newest first.

    Example: decisionops outcomes list --arm control --since 30d
    """
    if arm is not None and arm not in ("treated", "control"):
        raise fail(f"--arm: {arm!r} is not one of treated, control")
    start = None
    if since is not None:
        try:
            start = parse_since(since, now=utcnow())
        except ValueError as exc:
            raise fail(f"--since: {exc}") from None
    with open_store() as store:
        rows, more = limited(store.outcomes.outcome_list(  # type: ignore[arg-type]
            since=start, kind=kind, arm=arm, limit=limit + 1), limit)
    if as_json:
        print_json(rows)
        if more:
            say_more(limit, 100_000, as_json=True)
        return
    print_table("outcomes", ["id", "arm", "kind", "entity", "label", "value", "observed",
                             "decision / prediction", "source"],
                [[o["id"], o["arm"], o["kind"], o["entity_id"], o["label"],
                  f"{o['value_realized']:,.2f}", f"{o['observed_at']:%Y-%m-%d %H:%M}",
                  o["decision_id"] or o["prediction_id"], o["source"]] for o in rows],
                empty="no outcomes recorded: decisionops outcomes import FILE")
    if more:
        say_more(limit, 100_000, as_json=False)
