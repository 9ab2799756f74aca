"""``decisionops ingest`` and ``decisionops run``."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from agent.cli._common import console, err_console, fail, print_json, runtime, settings
from agent.errors import InvalidInputError
from agent.sources import (
    FieldMapping,
    RowError,
    SourceBatch,
    SourceLimits,
    iter_file,
    iter_kserve_v2,
    iter_mlflow,
)
from agent.sources._batch import clip
from agent.sources._rows import default_problems
from agent.store import IngestResult

__all__ = ["ingest", "run"]

_FORMATS = ("auto", "csv", "jsonl", "parquet", "mlflow", "kserve")
_FLAGS = {"kind": "--kind", "model": "--model", "entity_type": "--entity-type"}
_KEPT_ERRORS = 1000
"""Problems kept for the report; past them only the rows are counted."""
_DEFAULT = SourceLimits()


def _chunks(path: Path, fmt: str, mapping: FieldMapping, request: Path | None,
            entity_column: str, limits: SourceLimits, batch_rows: int
            ) -> Iterator[SourceBatch]:
    """The input as chunks to store one after the other; whole-input problems raise here,
    before the first chunk."""
    if fmt in ("auto", "csv", "jsonl", "parquet"):
        return iter_file(path, fmt, mapping, limits=limits,  # type: ignore[arg-type]
                         batch_rows=batch_rows)
    if request is None:
        raise InvalidInputError(f"--format {fmt} needs --request: the request body the model "
                                "server answered, to join entity ids", field="request")
    body, req = _body(path, limits), _body(request, limits)
    if fmt == "mlflow":
        return iter_mlflow(body, req, mapping=mapping, entity_column=entity_column,
                           limits=limits, batch_rows=batch_rows)
    return iter_kserve_v2(body, req, mapping=mapping, entity_input=entity_column,
                          limits=limits, batch_rows=batch_rows)


def _marking_last(chunks: Iterator[SourceBatch]) -> Iterator[tuple[SourceBatch, bool]]:
    """Each chunk, and whether it is the last: only the last one is synced to disk (its
    sync covers the others) before the command reports."""
    ahead = next(chunks, None)
    while ahead is not None:
        chunk, ahead = ahead, next(chunks, None)
        yield chunk, ahead is None


def _body(path: Path, limits: SourceLimits) -> bytes:
    if path.stat().st_size > limits.max_bytes:
        raise InvalidInputError(f"file is {path.stat().st_size} bytes; the limit is "
                                f"{limits.max_bytes} bytes (--max-bytes)", location=str(path))
    return path.read_bytes()


@dataclass
class _Tally:
    """Counts in rows: accepted, already stored, rejected (a row with three problems is
    one rejected row); the first problems, each naming its row."""

    rows: int = 0
    ingested: int = 0
    already_stored: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    omitted: int = 0
    unknown_kinds: set[str] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)
    """The ledger entries of this run's batches."""

    def add(self, chunk: SourceBatch, result: IngestResult) -> None:
        self.rows += chunk.rows_read
        self.ingested += len(result.new)
        self.unknown_kinds.update(result.unknown_kinds)
        errors = list(chunk.errors)
        # An id an earlier batch of this input stored is a duplicate row of the input.
        repeats = [i for i in result.duplicates if result.stored_by.get(i) in self.batches]
        if repeats:
            number = dict(zip((p.id for p in chunk.predictions), chunk.numbers, strict=True))
            errors += [RowError(row=number[i], field="id", value=clip(i),
                                message="duplicate id; an earlier row was kept")
                       for i in repeats]
        if result.seq is not None:
            self.batches.add(result.seq)
        self.already_stored += len(result.duplicates) - len(repeats)
        self.rejected += len({e.row for e in errors})
        room = _KEPT_ERRORS - len(self.errors)
        self.errors += errors[:room]
        self.omitted += max(0, len(errors) - room)


def _progress(quiet: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"),
                    TextColumn("[cyan]{task.completed:,.0f} rows"),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                    console=err_console, transient=True,
                    disable=quiet or not err_console.is_terminal)


def ingest(
    path: Annotated[Path, typer.Argument(help="Predictions file (CSV/JSONL/Parquet) or response "
                                         "body.", exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="auto, csv, jsonl, parquet, mlflow or kserve.")] = "auto",
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
    max_rows: Annotated[int, typer.Option(
        "--max-rows", min=1, help="Refuse an input of more rows than this.")] = _DEFAULT.max_rows,
    max_bytes: Annotated[int, typer.Option(
        "--max-bytes", min=1, help="Refuse a file larger than this.")] = _DEFAULT.max_bytes,
    batch_rows: Annotated[int, typer.Option(
        "--batch-rows", min=1, max=100_000,
        help="Rows validated and stored per transaction (one ledger entry each).")] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Add predictions to the store, streaming: the file is read, validated and stored a
    batch of rows at a time (memory stays flat), each batch in one transaction with one
    ledger entry that commits to every row in it (decisionops ledger prove-row ID).
    Bad rows are reported (row and field) and skipped; ids already stored are left
    alone. Anything that refuses the whole file (size, encoding, header, row count) is
    found before the first batch is stored. A progress line with rows/s shows on a
    terminal.

    Example: decisionops ingest predictions.csv --format csv --kind churn

    Example: decisionops ingest nightly.parquet --max-rows 5000000 --json
    """
    if fmt not in _FORMATS:
        raise fail(f"--format: {fmt!r} is not one of {', '.join(_FORMATS)}")
    mapping = _mapping(mapping_file, kind=kind, model=model, entity_type=entity_type)
    for target, message in default_problems(mapping).items():
        given = {"kind": kind, "model": model, "entity_type": entity_type}.get(target)
        raise fail(f"{_FLAGS[target]}: {given!r} {message}" if given is not None
                   else f"--mapping: defaults.{target}: {message}")
    limits = SourceLimits(max_rows=max_rows, max_bytes=max_bytes)
    started = time.perf_counter()
    chunks = _chunks(path, fmt, mapping, request, entity_column, limits, batch_rows)
    tally = _Tally()
    with runtime() as rt, _progress(as_json) as progress:
        # What start-up loaded lives as long as the process: keep it out of the
        # collector's full passes, which a million rows' objects set off again and again.
        gc.freeze()
        task = progress.add_task(f"ingesting {path.name}", total=None, rate="")
        for chunk, last in _marking_last(chunks):
            tally.add(chunk, rt.ingest(chunk.predictions, source=f"file:{path.name}",
                                       durable=last))
            elapsed = time.perf_counter() - started
            progress.update(task, completed=tally.rows,
                            rate=f"{tally.rows / max(elapsed, 1e-9):,.0f} rows/s")
    seconds = time.perf_counter() - started
    _report(path, tally, seconds, as_json)
    if tally.rejected and not (tally.ingested or tally.already_stored):
        raise typer.Exit(2)


def _report(path: Path, tally: _Tally, seconds: float, as_json: bool) -> None:
    rate = tally.rows / seconds if seconds > 0 else 0.0
    if as_json:
        print_json({"file": str(path), "rows": tally.rows, "ingested": tally.ingested,
                    "already_stored": tally.already_stored, "rejected": tally.rejected,
                    "errors": [e.model_dump() for e in tally.errors],
                    "errors_omitted": tally.omitted,
                    "kinds_without_playbook": sorted(tally.unknown_kinds),
                    "batches": len(tally.batches), "seconds": round(seconds, 3),
                    "rows_per_s": round(rate)})
        return
    console.print(f"{path.name}: {tally.rows:,} rows, [green]{tally.ingested:,} ingested[/], "
                  f"{tally.already_stored:,} already stored, "
                  f"[{'red' if tally.rejected else 'dim'}]{tally.rejected:,} rejected[/] "
                  f"[dim]({seconds:.1f} s, {rate:,.0f} rows/s)[/]")
    by_row: dict[int, list[RowError]] = {}
    for error in tally.errors:
        by_row.setdefault(error.row, []).append(error)
    for errors in list(by_row.values())[:20]:
        err_console.print(f"  [red]✗[/] {errors[0].where}: "
                          + escape("; ".join(e.problem for e in errors)), highlight=False)
    if tally.rejected > 20:
        err_console.print(f"  … and {tally.rejected - 20:,} more rejected rows (use --json for "
                          f"the first {_KEPT_ERRORS} problems)")
    if tally.unknown_kinds:
        err_console.print(f"  [yellow]no playbook for kind(s): "
                          f"{', '.join(sorted(tally.unknown_kinds))}; triage sends them to a person "
                          "(decisionops predictions queue; or map the kind: kind_aliases)[/]")


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
    warning = settings().uplift_warning
    if warning and not (once and as_json):  # --once --json carries it in the summary
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
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
        print_json({**summary, "warnings": [warning] if warning else []})
        return
    console.print(f"triaged {report.triaged} (act {summary['act']}, dropped {summary['drop']}, "
                  f"held {summary['hold']}, needs a human {summary['needs_human']}); started "
                  f"{report.started} decisions; applied answers to {report.resumed}; carried on "
                  f"{report.recovered}")
    if any(report.housekeeping.values()):
        console.print("housekeeping: " + ", ".join(f"{k} {v}" for k, v in
                                                   report.housekeeping.items() if v))
    waiting = sum(len(r.pending_approvals) for kind in ("started", "resumed")
                  for r in report.results.get(kind, []))
    if waiting:
        console.print(f"{waiting} approval request(s) waiting: decisionops approvals list")
    for error in report.errors:
        err_console.print(f"  [yellow]![/] {error}", highlight=False)
