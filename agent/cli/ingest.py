"""``decisionops ingest``: a thin adapter over ``agent.sources.iter_prepared`` (which
decides how a file is read and joined, and maps a large one in worker processes) and the
runtime's ``ingest``; here only options, the report (the counts of
``agent.sources.IngestSummary``, named as the HTTP API names them), refusals (text on
stderr, or with ``--json`` an ``{"error": …}`` body on stdout) and the exit code (0 all
rows taken, 1 rows rejected unless ``--allow-rejects``, 2 bad usage or an input refused
whole)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from decisionops.agent.cli._common import (
    JSON_ERRORS,
    err_console,
    fail,
    print_json,
    runtime,
    say,
    settings,
)
from decisionops.agent.errors import (
    ConfigError,
    DecisionOpsError,
    InvalidInputError,
    error_fields,
    status_for,
)
from decisionops.agent.sources import (
    STDIN,
    FieldMapping,
    IngestTally,
    PreparedChunk,
    RowError,
    SourceLimits,
    as_file,
    said_of_input,
)
from decisionops.agent.sources._batch import DERIVED_PREFIX
from decisionops.agent.sources._open import FORMATS, ServingJoin
from decisionops.agent.sources._parallel import (
    MOST_JOBS,
    PARALLEL_BYTES,
    PARALLEL_ROWS,
    iter_prepared,
)
from decisionops.agent.sources._rows import default_problems
from decisionops.agent.sources._summary import KEPT_ERRORS

__all__ = ["ingest"]

_FLAGS = {"kind": "--kind", "model": "--model", "entity_type": "--entity-type"}
_SHOWN = 20
_DEFAULT = SourceLimits()


def _marking_last(chunks: Iterator[PreparedChunk]) -> Iterator[tuple[PreparedChunk, bool]]:
    """Each chunk, and whether it is the last: only the last one is synced to disk (its
    sync covers the others) before the command reports."""
    ahead = next(chunks, None)
    while ahead is not None:
        chunk, ahead = ahead, next(chunks, None)
        yield chunk, ahead is None


def _progress(quiet: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False),
                    TextColumn("[cyan]{task.completed:,.0f} rows"),
                    TextColumn("{task.fields[rate]}", markup=False), TimeElapsedColumn(),
                    console=err_console, transient=True,
                    disable=quiet or not err_console.is_terminal)


def ingest(
    path: Annotated[Path, typer.Argument(help="Predictions file (CSV/JSONL/JSON/Parquet) or a "
                                         "model server's response body (JSON); - reads "
                                         "standard input (or a pipe), copied aside first.",
                                         dir_okay=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", help="auto (by suffix and shape), csv, "
                                     "jsonl, json (an array of predictions, or the API's "
                                     "body {'predictions': [...]}), parquet, mlflow "
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
    output_name: Annotated[str | None, typer.Option(
        "--output-name", "--output",
        help="For a KServe V2 response: the output tensor to read (default: the first "
        "floating-point one); output_name over HTTP. --output is the old name.")] = None,
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
    # Ranges are checked in the command, not by the parser, so that --json says them too.
    max_rows: Annotated[int, typer.Option(
        "--max-rows", help="Refuse an input of more rows than this (at least 1)."
    )] = _DEFAULT.max_rows,
    max_bytes: Annotated[int, typer.Option(
        "--max-bytes", help="Refuse a file larger than this (at least 1).")] = _DEFAULT.max_bytes,
    batch_rows: Annotated[int, typer.Option(
        "--batch-rows", help="Rows validated and stored per transaction, one ledger entry "
        "each (1 to 100,000).")] = 5000,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j",
        help=f"Processes that validate rows while this one stores them, 1 to 64 (default: "
        f"one per CPU, at most {MOST_JOBS}, for a CSV/JSONL file of "
        f"{PARALLEL_BYTES // 2**20} MB or more or a Parquet file of {PARALLEL_ROWS:,} rows "
        "or more; 1 otherwise). The result is the same for "
        "any number.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON; a refused input as {\"error\": {...}}, on "
        "standard output too.")] = False,
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
    usage or an input refused whole (nothing stored; with --json said as {"error":
    {"message", "field", "line"...}} on standard output).

    Example: decisionops ingest predictions.csv --kind churn

    Example: decisionops ingest response.json --inputs customers.csv --entity-column
    customer_id --value-column arr --kind churn --model churn-gbm --entity-type account

    Example: decisionops ingest infer.json --inputs request.json --entity-column @index
    --positive-class 1 --kind failure --entity-type asset

    Example: decisionops ingest nightly.parquet --max-rows 5000000 --json

    Example: decisionops ingest nightly.csv --jobs 4
    """
    with _refusals(as_json):
        if fmt not in FORMATS:
            raise InvalidInputError(f"{fmt!r} is not one of {', '.join(FORMATS)}",
                                    field="--format")
        for option, value, low, high in (("--max-rows", max_rows, 1, None),
                                         ("--max-bytes", max_bytes, 1, None),
                                         ("--batch-rows", batch_rows, 1, 100_000),
                                         ("--jobs", jobs, 1, 64)):
            if value is not None and not low <= value <= (high or value):
                within = f"{low} to {high:,}" if high else f"at least {low}"
                raise InvalidInputError(f"must be {within}, not {value}", field=option)
        mapping = _mapping(mapping_file, value_column, kind=kind, model=model,
                           entity_type=entity_type)
        for target, message in default_problems(mapping).items():
            given = {"kind": kind, "model": model, "entity_type": entity_type}.get(target)
            raise (InvalidInputError(f"{given!r} {message}", field=_FLAGS[target])
                   if given is not None else InvalidInputError(
                       message, field=f"defaults.{target}", location="--mapping"))
        positive: int | str | None = positive_class
        if positive_class is not None and positive_class.strip().isdigit():
            positive = int(positive_class)
        limits = SourceLimits(max_rows=max_rows, max_bytes=max_bytes,
                              rows_advice="split the input or raise --max-rows",
                              bytes_advice="split the input or raise --max-bytes")
        join = ServingJoin(inputs=inputs, entity_column=entity_column, positive=positive,
                           output_name=output_name)
        started = time.perf_counter()
        aliases = settings().kind_aliases
        name = "stdin" if str(path) == STDIN else path.name
        tally = IngestTally()
        readable: Path | None = None
        with ExitStack() as stack:
            try:
                readable = stack.enter_context(as_file(path, limits))
                chunks = iter_prepared(readable, fmt, mapping, join=join, limits=limits,
                                       batch_rows=batch_rows, aliases=aliases, jobs=jobs)
            except InvalidInputError as exc:
                if readable is not None:
                    said_of_input(exc, readable, path)
                raise _refused(exc, by_option=True) from None
            rt = stack.enter_context(runtime())
            progress = stack.enter_context(_progress(as_json))
            # What start-up loaded lives as long as the process: keep it out of the
            # collector's full passes, which a million rows' objects set off again and again.
            gc.freeze()
            task = progress.add_task(f"ingesting {name}", total=None, rate="")
            for chunk, last in _marking_last(chunks):
                tally.add(chunk, rt.ingest(chunk.rows, source=f"file:{name}", durable=last))
                elapsed = time.perf_counter() - started
                progress.update(task, completed=tally.rows_read,
                                rate=f"{tally.rows_read / max(elapsed, 1e-9):,.0f} rows/s")
    seconds = time.perf_counter() - started
    _report("stdin" if str(path) == STDIN else str(path), tally, seconds, as_json)
    if tally.rejected and not allow_rejects:
        raise typer.Exit(1)


@contextmanager
def _refusals(as_json: bool) -> Iterator[None]:
    """Every error of the command said once, by ``_refused`` (as JSON on stdout with
    ``--json``, however the command was called)."""
    token = JSON_ERRORS.set(as_json or JSON_ERRORS.get())
    try:
        yield
    except DecisionOpsError as exc:
        raise _refused(exc) from None
    finally:
        JSON_ERRORS.reset(token)


def _refused(exc: DecisionOpsError, *, by_option: bool = False) -> typer.Exit:
    """The refusal as every command says it (``_common.fail``), ``field`` naming the
    option that fixes it where one does (``--entity-column``, ``--max-rows``) and
    ``line``/``row`` where known; exit code 2: refused, nothing stored. ``by_option``:
    the input was refused; name the option in the message too (``--entity-column: …``)."""
    message = _by_option(exc) if by_option and isinstance(exc, InvalidInputError) \
        else exc.message
    fields = error_fields(exc)
    if isinstance(exc, InvalidInputError):
        given = fields.get("field")
        fields["field"] = ("--max-rows" if "max_rows" in exc.details else
                           "--max-bytes" if "max_bytes" in exc.details else
                           _OPTIONS.get(given or "", given))
    return fail(message, exc.exit_code, status=status_for(exc), **fields)


_OPTIONS = {"inputs": "--inputs", "entity_column": "--entity-column",
            "positive_class": "--positive-class", "value_at_stake": "--value-column",
            "kind": "--kind", "model": "--model", "entity_type": "--entity-type",
            "format": "--format", "output_name": "--output-name"}


def _by_option(exc: InvalidInputError) -> str:
    """The error named by the option that fixes it (``--entity-column: …``)."""
    option = _OPTIONS.get(exc.field or "")
    if option is None:
        return exc.message
    text = exc.message.removeprefix(f"{exc.location}: ").removeprefix(f"{exc.field}: ")
    if not exc.location:
        return f"{option}: {text}"
    # a part of the body ("the response") or a file, named as it is ("in scores.json")
    where = exc.location if any(c in exc.location for c in "./\\") else f"the {exc.location}"
    return f"{option}: {text} (in {where})"


def _mapping(path: Path | None, value_column: str | None, **defaults: str | None
             ) -> FieldMapping:
    try:
        base = FieldMapping.from_file(path) if path is not None else FieldMapping()
    except ConfigError as exc:  # the file given: bad input, named as every refusal is
        problems = exc.details.get("problems") or []
        if not problems:  # the file itself (unreadable, not YAML/TOML/JSON)
            raise InvalidInputError(exc.message, field="--mapping") from None
        field = problems[0].partition(":")[0]
        raise InvalidInputError("; ".join(problems).removeprefix(f"{field}: "), field=field,
                                location="--mapping") from None
    if value_column is not None:
        data = base.model_dump(exclude_unset=True)
        base = FieldMapping.from_dict({**data, "value_at_stake": value_column},
                                      location="--value-column")
    return base.with_defaults(**defaults)


_NEEDS = {"no_value_at_stake": "without a value at stake and no value_at_stake_defaults "
                               "for their kind, which triage sends to a person unless "
                               "it drops them (a reading already decided, a cooldown; "
                               "their playbook needs an expected value: --value-column)",
          "unknown_kind": "of a kind no playbook answers, which triage sends to a person "
                          "(decisionops playbooks list; or map it: kind_aliases)",
          "no_entity": "without an entity id (rejected)"}


def _report(source: str, tally: IngestTally, seconds: float, as_json: bool) -> None:
    rate = tally.rows_read / seconds if seconds > 0 else 0.0
    if as_json:
        # The counts as the HTTP API names them (one definition: IngestSummary), and what
        # is the command's own: the file, its batches, its speed.
        print_json({"file": source, **tally.summary().model_dump(mode="json"),
                    "batches": len(tally.batches), "seconds": round(seconds, 3),
                    "rows_per_s": round(rate)})
        return
    rows = f"{tally.rows_read:,} row" + ("" if tally.rows_read == 1 else "s")
    tone = "red" if tally.rejected else "dim"
    empty = (f", {tally.empty_rows:,} empty (every cell blank; skipped)" if tally.empty_rows
             else "")
    say("{}: {}, [green]{:,} ingested[/], {:,} already stored, [" + tone + "]{:,} rejected[/]{}"
        " [dim]({:.1f} s, {:,.0f} rows/s)[/]", Path(source).name, rows, tally.ingested,
        tally.already_stored, tally.rejected, empty, seconds, rate)
    if tally.changed_count:
        shown = ", ".join(tally.changed[:5]) + (" …" if tally.changed_count > 5 else "")
        derived = any(i.startswith(DERIVED_PREFIX) for i in tally.changed)
        say("  [yellow]![/] {:,} already stored with other content ({}): the stored "
            "predictions stand (ids are immutable); send a correction under a new id{}",
            tally.changed_count, shown, " (these ids were derived from the model, its "
            "version, the kind, the entity and the time, not sent: score the correction "
            "as another model_version, e.g. defaults.model_version in --mapping)"
            if derived else "", err=True, highlight=False)
    if tally.rows_read == 0 and not tally.empty_rows:
        say("  [yellow]![/] {} holds no prediction: a run without predictions, or an "
            "export that failed", Path(source).name, err=True, highlight=False)
    for key, what in _NEEDS.items():
        if tally.needs[key]:
            extra = (f": {', '.join(sorted(tally.unknown_kinds))}"
                     if key == "unknown_kind" and tally.unknown_kinds else "")
            count = tally.needs[key]
            say("  [yellow]![/] {:,} row{} {}{}", count, "" if count == 1 else "s", what,
                extra, err=True, highlight=False)
    _print_problems(tally)


def _print_problems(tally: IngestTally) -> None:
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
        # Each problem with the values of the rows listed (not the first row's for all).
        problems = [e.problem_with([r[i].value for r in rows[:3] if r[i].value is not None])
                    for i, e in enumerate(first)]
        say("  [red]✗[/] {}: {}", where, "; ".join(problems), err=True, highlight=False)
        shown += len(rows)
    if tally.rejected > shown:
        err_console.print(f"  … and {tally.rejected - shown:,} more rejected rows (use --json for "
                          f"the first {KEPT_ERRORS} problems)")
