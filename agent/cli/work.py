"""``decisionops ingest`` and ``decisionops run``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from agent.cli._common import console, err_console, fail, print_json, runtime
from agent.errors import InvalidInputError
from agent.sources import FieldMapping, SourceBatch, parse_kserve_v2, parse_mlflow, read_file

__all__ = ["ingest", "run"]

Format = Literal["auto", "csv", "jsonl", "mlflow", "kserve"]


def _read(path: Path, fmt: str, mapping: FieldMapping, request: Path | None,
          entity_column: str) -> SourceBatch:
    if fmt in ("auto", "csv", "jsonl"):
        return read_file(path, fmt, mapping)  # type: ignore[arg-type]
    if request is None:
        raise InvalidInputError(f"--format {fmt} needs --request: the request body the model "
                                "server answered, to join entity ids", field="request")
    body, req = path.read_bytes(), request.read_bytes()
    if fmt == "mlflow":
        return parse_mlflow(body, req, mapping=mapping, entity_column=entity_column)
    return parse_kserve_v2(body, req, mapping=mapping, entity_input=entity_column)


def ingest(
    path: Annotated[Path, typer.Argument(help="Predictions file (CSV/JSONL) or response body.",
                                         exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="auto, csv, jsonl, mlflow or kserve.")] = "auto",
    kind: Annotated[str | None, typer.Option(help="Prediction kind for rows without one.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for rows without one.")] = None,
    entity_type: Annotated[str | None, typer.Option(help="Entity type for rows without one.")
                           ] = None,
    mapping_file: Annotated[Path | None, typer.Option(
        "--mapping", help="JSON/YAML file: Prediction field → column, plus defaults.",
        exists=True, dir_okay=False)] = None,
    request: Annotated[Path | None, typer.Option(
        help="For mlflow/kserve: the request body, whose entity ids the response joins.",
        exists=True, dir_okay=False)] = None,
    entity_column: Annotated[str, typer.Option(
        help="For mlflow/kserve: the request column/input holding entity ids.")] = "entity_id",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Add predictions to the store. Bad rows are reported (row and field) and skipped;
    good rows are stored in one transaction; ids already stored are left alone.

    Example: decisionops ingest predictions.csv --format csv --kind churn
    """
    if fmt not in ("auto", "csv", "jsonl", "mlflow", "kserve"):
        raise fail(f"--format: {fmt!r} is not one of auto, csv, jsonl, mlflow, kserve")
    mapping = _mapping(mapping_file, kind=kind, model=model, entity_type=entity_type)
    batch = _read(path, fmt, mapping, request, entity_column)
    with runtime() as rt:
        result = rt.ingest(batch.predictions, source=f"file:{path.name}")
    report = {"file": str(path), "rows": batch.rows_read, "ingested": len(result.new),
              "already_stored": len(result.duplicates), "rejected": len(batch.errors),
              "errors": [e.model_dump() for e in batch.errors],
              "kinds_without_playbook": result.unknown_kinds}
    if as_json:
        print_json(report)
    else:
        console.print(f"{path.name}: {batch.rows_read} rows, [green]{len(result.new)} ingested[/], "
                      f"{len(result.duplicates)} already stored, "
                      f"[{'red' if batch.errors else 'dim'}]{len(batch.errors)} rejected[/]")
        for error in batch.errors[:20]:
            err_console.print(f"  [red]✗[/] {error}", highlight=False)
        if len(batch.errors) > 20:
            err_console.print(f"  … and {len(batch.errors) - 20} more (use --json for all)")
        if result.unknown_kinds:
            err_console.print(f"  [yellow]no playbook for kind(s): "
                              f"{', '.join(result.unknown_kinds)}; triage will drop them[/]")
    if batch.errors and not batch.predictions:
        raise typer.Exit(2)


def _mapping(path: Path | None, **defaults: str | None) -> FieldMapping:
    base = FieldMapping.from_file(path) if path is not None else FieldMapping()
    return base.with_defaults(**defaults)


def run(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64,
        help="Worker processes for the continuous loop (more than 1 needs PostgreSQL).")] = 1,
    poll: Annotated[float, typer.Option(
        "--poll", min=0.05, max=3600, help="Seconds to wait when there is no work.")] = 1.0,
    max_restarts: Annotated[int, typer.Option(
        "--max-restarts", min=0, max=1000,
        help="With --workers N: restarts of one worker tolerated within --restart-window; "
        "one more death stops all workers and exits 1.")] = 5,
    restart_window: Annotated[float, typer.Option(
        "--restart-window", min=1, max=86400,
        help="With --workers N: seconds over which a worker's deaths are counted.")] = 300.0,
    restart_backoff: Annotated[float, typer.Option(
        "--restart-backoff", min=0.01, max=60, hidden=True,
        help="First wait before restarting a dead worker (doubles up to 60 s); for tests."
    )] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    planner: Annotated[str | None, typer.Option(
        "--planner", help="playbook, llm or hybrid; overrides the planner setting for this run "
        "(llm and hybrid need DECISIONOPS_LLM_BASE_URL and DECISIONOPS_LLM_MODEL).")] = None,
) -> None:
    """Pick up work: triage new predictions, start decisions for actionable ones, apply
    approvals answered since the last pass, carry on decisions whose worker stopped, and
    run the housekeeping passes. Without --once it runs until SIGTERM/Ctrl-C.

    With --workers N (PostgreSQL) this process supervises N worker processes: one that
    dies is reported (with --json also as a {"supervisor": "worker_exited", …} line) and
    restarted after a backoff of 1 s doubling to 60 s; one that dies more than
    --max-restarts times within --restart-window seconds stops them all (exit 1).
    SIGTERM/Ctrl-C stops every worker (SIGKILL after 30 s); exit 0 when they stopped cleanly.

    Example: decisionops run --once

    Example: DECISIONOPS_LLM_BASE_URL=… DECISIONOPS_LLM_MODEL=… decisionops run --once --planner llm

    Example: DECISIONOPS_DATABASE_URL=postgresql+psycopg://… decisionops run --workers 4

    Example: decisionops run --workers 4 --max-restarts 3 --restart-window 600 --json
    """
    if planner is not None and planner not in ("playbook", "llm", "hybrid"):
        raise fail(f"--planner: {planner!r} is not one of playbook, llm, hybrid")
    if not once:
        from agent.cli.loop import run_loop

        if planner is not None:
            # Through the environment, so the worker processes it spawns use it too.
            os.environ["DECISIONOPS_PLANNER"] = planner
        run_loop(workers=workers, poll_seconds=poll, as_json=as_json,
                 max_restarts=max_restarts, restart_window=restart_window,
                 restart_backoff=restart_backoff)
        return
    with runtime(**({"planner": planner} if planner else {})) as rt:
        report = rt.run_once()
    summary = report.summary()
    if as_json:
        print_json(summary)
        return
    console.print(f"triaged {report.triaged} (act {summary['act']}, dropped {summary['drop']}, "
                  f"held {summary['hold']}); started {report.started} decisions; applied "
                  f"answers to {report.resumed}; carried on {report.recovered}")
    if any(report.housekeeping.values()):
        console.print("housekeeping: " + ", ".join(f"{k} {v}" for k, v in
                                                   report.housekeeping.items() if v))
    waiting = sum(len(r.pending_approvals) for kind in ("started", "resumed")
                  for r in report.results.get(kind, []))
    if waiting:
        console.print(f"{waiting} approval request(s) waiting: decisionops approvals list")
    for error in report.errors:
        err_console.print(f"  [yellow]![/] {error}", highlight=False)
