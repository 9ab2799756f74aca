"""``decisionops ingest``: a thin adapter over ``agent.sources.iter_prepared`` (which
decides how a file is read and joined, and maps a large one in worker processes) and the
runtime's ``ingest``; here only options, the
tally in rows, the report and the exit code (0 all rows taken, 1 rows rejected unless
``--allow-rejects``, 2 bad usage or an input refused whole)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from decisionops.agent.cli._common import (
    console,
    err_console,
    fail,
    print_json,
    runtime,
    settings,
)
from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources import (
    STDIN,
    FieldMapping,
    PreparedChunk,
    RowError,
    SourceLimits,
    as_file,
)
from decisionops.agent.sources._batch import clip
from decisionops.agent.sources._open import FORMATS, ServingJoin
from decisionops.agent.sources._parallel import PARALLEL_BYTES, iter_prepared
from decisionops.agent.sources._rows import default_problems
from decisionops.agent.store import IngestResult

__all__ = ["ingest"]

_FLAGS = {"kind": "--kind", "model": "--model", "entity_type": "--entity-type"}
_KEPT_ERRORS = 1000
"""Problems kept for the report; past them only the rows are counted."""
_SHOWN = 20
_DEFAULT = SourceLimits()


def _marking_last(chunks: Iterator[PreparedChunk]) -> Iterator[tuple[PreparedChunk, bool]]:
    """Each chunk, and whether it is the last: only the last one is synced to disk (its
    sync covers the others) before the command reports."""
    ahead = next(chunks, None)
    while ahead is not None:
        chunk, ahead = ahead, next(chunks, None)
        yield chunk, ahead is None


@dataclass
class _Tally:
    """Counts in rows: accepted, already stored, rejected (a row with three problems is
    one rejected row); what accepted rows lack for triage; the first problems."""

    rows: int = 0
    ingested: int = 0
    already_stored: int = 0
    rejected: int = 0
    needs: dict[str, int] = field(default_factory=lambda: {
        "unknown_kind": 0, "no_value_at_stake": 0, "no_entity": 0})
    errors: list[RowError] = field(default_factory=list)
    omitted: int = 0
    unknown_kinds: set[str] = field(default_factory=set)
    batches: set[int] = field(default_factory=set)
    """The ledger entries of this run's batches."""

    def add(self, chunk: PreparedChunk, result: IngestResult) -> None:
        self.rows += chunk.rows_read
        self.ingested += len(result.new)
        self.unknown_kinds.update(result.unknown_kinds)
        for key, count in result.needs.items():
            self.needs[key] += count
        errors = list(chunk.errors)
        # An id an earlier batch of this input stored is a duplicate row of the input.
        repeats = [i for i in result.duplicates if result.stored_by.get(i) in self.batches]
        if repeats:
            where = {r.id: (n, line) for r, n, line in
                     zip(chunk.rows, chunk.numbers, chunk.lines or [None] * len(chunk.rows),
                         strict=True)}
            errors += [RowError(row=where[i][0], line=where[i][1], field="id", value=clip(i),
                                message="duplicate id; an earlier row was kept")
                       for i in repeats]
        if result.seq is not None:
            self.batches.add(result.seq)
        self.already_stored += len(result.duplicates) - len(repeats)
        self.rejected += len({e.row for e in errors})
        self.needs["no_entity"] += len({e.row for e in errors if e.field == "entity_id"})
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
    path: Annotated[Path, typer.Argument(help="Predictions file (CSV/JSONL/JSON/Parquet) or a "
                                         "model server's response body (JSON); - reads "
                                         "standard input (or a pipe), copied aside first.",
                                         dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto (by suffix and shape), csv, "
                                     "jsonl, json (an array of predictions), parquet, mlflow "
                                     "or kserve.")] = "auto",
    inputs: Annotated[Path | None, typer.Option(
        "--inputs", "--request", exists=True, dir_okay=False,
        help="For a model-server response: the input it scored, joined by row order — a "
        "CSV/TSV/JSONL/Parquet table or the request body (MLflow dataframe_split/"
        "dataframe_records/inputs/instances, KServe V1 instances, V2 inputs).")] = None,
    entity_column: Annotated[str, typer.Option(
        help="For a response: the --inputs column of entity ids; @index takes the request's "
        "dataframe_split index, else the row's 0-based position.")] = "entity_id",
    value_column: Annotated[str | None, typer.Option(
        help="The column holding the value at stake (money at risk), for triage's expected "
        "value.")] = None,
    positive_class: Annotated[str | None, typer.Option(
        help="For [n, k] class probabilities: the positive class by index (1) or name "
        "(true, churned). Default: a class named 1/true/yes, else the last column.")] = None,
    output: Annotated[str | None, typer.Option(
        help="For a KServe V2 response: the output tensor to read (default: the first "
        "floating-point one).")] = None,
    kind: Annotated[str | None, typer.Option(help="Prediction kind for rows without one "
                                             "(see: decisionops playbooks list).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for rows without one.")] = None,
    entity_type: Annotated[str | None, typer.Option(help="Entity type for rows without one.")
                           ] = None,
    mapping_file: Annotated[Path | None, typer.Option(
        "--mapping", help="JSON/YAML file: Prediction field → column, plus defaults.",
        exists=True, dir_okay=False)] = None,
    allow_rejects: Annotated[bool, typer.Option(
        "--allow-rejects", help="Exit 0 even when rows were rejected.")] = False,
    max_rows: Annotated[int, typer.Option(
        "--max-rows", min=1, help="Refuse an input of more rows than this.")] = _DEFAULT.max_rows,
    max_bytes: Annotated[int, typer.Option(
        "--max-bytes", min=1, help="Refuse a file larger than this.")] = _DEFAULT.max_bytes,
    batch_rows: Annotated[int, typer.Option(
        "--batch-rows", min=1, max=100_000,
        help="Rows validated and stored per transaction (one ledger entry each).")] = 5000,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, max=64,
        help=f"Processes that validate rows while this one stores them (default: one per "
        f"CPU, at most 8, for a CSV/JSONL/Parquet file of {PARALLEL_BYTES // 2**20} MB or "
        "more; 1 otherwise). The result is the same for any number.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Add predictions to the store, streaming: the file is read, validated and stored a
    batch of rows at a time, each batch in one transaction with one ledger entry that
    commits to every row in it (decisionops ledger prove-row ID). Bad rows are reported
    (row and field) and skipped; ids already stored are left alone. Anything that refuses
    the whole file (size, encoding, header, row count, a bad option) is found before the
    first batch is stored, and said once. The summary counts rows, and how many lack what
    triage needs (no value at stake, a kind no playbook answers, no entity).

    A model server's response (MLflow /invocations, KServe V1 or V2) carries scores
    only: --inputs joins it, row by row, to the table or request it scored, for the
    entity ids (--entity-column) and the other columns, which become features.

    Exit codes: 0 every row taken, 1 rows were rejected (--allow-rejects: 0), 2 bad
    usage or an input refused whole (nothing stored).

    Example: decisionops ingest predictions.csv --kind churn

    Example: decisionops ingest response.json --inputs customers.csv --entity-column
    customer_id --value-column arr --kind churn --model churn-gbm --entity-type account

    Example: decisionops ingest infer.json --inputs request.json --entity-column @index
    --positive-class 1 --kind failure --entity-type asset

    Example: decisionops ingest nightly.parquet --max-rows 5000000 --json

    Example: decisionops ingest nightly.csv --jobs 4
    """
    if fmt not in FORMATS:
        raise fail(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    mapping = _mapping(mapping_file, value_column, kind=kind, model=model,
                       entity_type=entity_type)
    for target, message in default_problems(mapping).items():
        given = {"kind": kind, "model": model, "entity_type": entity_type}.get(target)
        raise fail(f"{_FLAGS[target]}: {given!r} {message}" if given is not None
                   else f"--mapping: defaults.{target}: {message}")
    positive: int | str | None = positive_class
    if positive_class is not None and positive_class.strip().isdigit():
        positive = int(positive_class)
    limits = SourceLimits(max_rows=max_rows, max_bytes=max_bytes,
                          rows_advice="split the input or raise --max-rows",
                          bytes_advice="split the input or raise --max-bytes")
    join = ServingJoin(inputs=inputs, entity_column=entity_column, positive=positive,
                       output_name=output)
    started = time.perf_counter()
    aliases = settings().kind_aliases
    name = "stdin" if str(path) == STDIN else path.name
    tally = _Tally()
    with ExitStack() as stack:
        try:
            readable = stack.enter_context(as_file(path, limits))
            chunks = iter_prepared(readable, fmt, mapping, join=join, limits=limits,
                                   batch_rows=batch_rows, aliases=aliases, jobs=jobs)
        except InvalidInputError as exc:
            raise fail(_by_option(exc)) from None
        rt = stack.enter_context(runtime())
        progress = stack.enter_context(_progress(as_json))
        # What start-up loaded lives as long as the process: keep it out of the
        # collector's full passes, which a million rows' objects set off again and again.
        gc.freeze()
        task = progress.add_task(f"ingesting {name}", total=None, rate="")
        for chunk, last in _marking_last(chunks):
            tally.add(chunk, rt.ingest(chunk.rows, source=f"file:{name}", durable=last))
            elapsed = time.perf_counter() - started
            progress.update(task, completed=tally.rows,
                            rate=f"{tally.rows / max(elapsed, 1e-9):,.0f} rows/s")
    seconds = time.perf_counter() - started
    _report("stdin" if str(path) == STDIN else str(path), tally, seconds, as_json)
    if tally.rejected and not allow_rejects:
        raise typer.Exit(1)


_OPTIONS = {"inputs": "--inputs", "entity_column": "--entity-column",
            "positive_class": "--positive-class", "value_at_stake": "--value-column",
            "kind": "--kind", "model": "--model", "entity_type": "--entity-type",
            "format": "--format", "outputs": "--output"}


def _by_option(exc: InvalidInputError) -> str:
    """The error named by the option that fixes it (``--entity-column: …``)."""
    option = _OPTIONS.get(exc.field or "")
    if option is None:
        return exc.message
    text = exc.message.removeprefix(f"{exc.location}: ").removeprefix(f"{exc.field}: ")
    return f"{option}: {text}" + (f" (in the {exc.location})" if exc.location else "")


def _mapping(path: Path | None, value_column: str | None, **defaults: str | None
             ) -> FieldMapping:
    base = FieldMapping.from_file(path) if path is not None else FieldMapping()
    if value_column is not None:
        data = base.model_dump(exclude_unset=True)
        base = FieldMapping.from_dict({**data, "value_at_stake": value_column},
                                      location="--value-column")
    return base.with_defaults(**defaults)


_NEEDS = {"no_value_at_stake": "without a value at stake and no value_at_stake_defaults "
                               "for their kind, which triage sends to a person (their "
                               "playbook needs an expected value: --value-column)",
          "unknown_kind": "of a kind no playbook answers, which triage sends to a person "
                          "(decisionops playbooks list; or map it: kind_aliases)",
          "no_entity": "without an entity id (rejected)"}


def _report(source: str, tally: _Tally, seconds: float, as_json: bool) -> None:
    rate = tally.rows / seconds if seconds > 0 else 0.0
    if as_json:
        print_json({"file": source, "rows": tally.rows, "ingested": tally.ingested,
                    "already_stored": tally.already_stored, "rejected": tally.rejected,
                    "needs": tally.needs,
                    "errors": [e.model_dump() for e in tally.errors],
                    "errors_omitted": tally.omitted,
                    "kinds_without_playbook": sorted(tally.unknown_kinds),
                    "batches": len(tally.batches), "seconds": round(seconds, 3),
                    "rows_per_s": round(rate)})
        return
    rows = f"{tally.rows:,} row" + ("" if tally.rows == 1 else "s")
    console.print(f"{Path(source).name}: {rows}, [green]{tally.ingested:,} ingested[/], "
                  f"{tally.already_stored:,} already stored, "
                  f"[{'red' if tally.rejected else 'dim'}]{tally.rejected:,} rejected[/] "
                  f"[dim]({seconds:.1f} s, {rate:,.0f} rows/s)[/]")
    for key, what in _NEEDS.items():
        if tally.needs[key]:
            extra = (f": {', '.join(sorted(tally.unknown_kinds))}"
                     if key == "unknown_kind" and tally.unknown_kinds else "")
            count = tally.needs[key]
            err_console.print(f"  [yellow]![/] {count:,} row{'' if count == 1 else 's'} "
                              f"{what}{extra}",
                              highlight=False)
    _print_problems(tally)


def _print_problems(tally: _Tally) -> None:
    """Rows with the same problems are one line (a problem every row shares is said
    once), at most 20 lines."""
    by_row: dict[int, list[RowError]] = {}
    for error in tally.errors:
        by_row.setdefault(error.row, []).append(error)
    groups: dict[tuple[Any, ...], list[list[RowError]]] = {}
    for errors in by_row.values():
        key = tuple((e.field, e.message) for e in errors)
        groups.setdefault(key, []).append(errors)
    shown = 0
    for rows in list(groups.values())[:_SHOWN]:
        first = rows[0]
        where = first[0].where if len(rows) == 1 else (
            f"{len(rows):,} rows ({', '.join(r[0].where for r in rows[:3])}"
            + (", …)" if len(rows) > 3 else ")"))
        err_console.print(f"  [red]✗[/] {where}: " + escape("; ".join(e.problem for e in first)),
                          highlight=False)
        shown += len(rows)
    if tally.rejected > shown:
        err_console.print(f"  … and {tally.rejected - shown:,} more rejected rows (use --json for "
                          f"the first {_KEPT_ERRORS} problems)")
