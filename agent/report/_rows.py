"""Outcome rows as they arrive: parsing JSON records, CSV and JSON Lines files, and
rows of a SQL query into ``OutcomeRow``, with one ``UnmatchedRow`` per row that cannot
be used.

A row names its subject by ``decision_id``, ``prediction_id`` or ``kind`` + ``entity_id``
and says what happened: ``label``, ``value_realized`` (alias ``value``), ``observed_at``,
optionally ``note``. Problems with the input as a whole (unreadable, too large, a CSV
header without the needed columns, a failing query) raise
``agent.errors.InvalidInputError`` and nothing is recorded. Matching rows to decisions
lives in ``_ingest``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from decisionops.agent.errors import InvalidInputError, pydantic_message
from decisionops.agent.models import Identifier, RealizedValue
from decisionops.agent.models import Name as KindName
from decisionops.agent.store._outcomes import normalize_label

__all__ = ["OutcomeFormat", "OutcomeRow", "UnmatchedRow", "parse_records", "read_outcome_file",
           "read_outcome_sql", "success_labels"]

OutcomeFormat = Literal["csv", "jsonl", "auto"]
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 500_000
_LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
_LOCATORS = ("decision_id", "prediction_id", "kind", "entity_id")
_CLIP = 80


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON and SQL ids are often numbers
    return value


def _label(value: Any) -> Any:
    if isinstance(value, str):
        value = normalize_label(value)
        if not _LABEL.match(value):
            raise ValueError("must be a word such as retained, churned or failure_avoided "
                             "(letters, digits, underscores)")
    return value


def success_labels(values: Iterable[str]) -> list[str]:
    """The outcome labels a report counts as success, each spelt as outcomes store it
    (``Failure avoided`` → ``failure_avoided``); ``ValueError`` naming the first that is
    not a label. The CLI's ``report --success`` and the API's ``success`` read them so."""
    labels = []
    for value in values:
        try:
            labels.append(_label(value))
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}") from None
    return labels


class _Empty(str):
    """A value given empty (a blank cell, a JSON null, a SQL NULL); shown as the empty
    text it was."""


_EMPTY = _Empty("")
Optional = BeforeValidator(_blank_is_none)
"""Blank text is missing; surrounding space is dropped; integer ids become text."""
Label = Annotated[str, BeforeValidator(_label), Field(min_length=1, max_length=100)]


class OutcomeRow(BaseModel):
    """One outcome as given: whom it is about and what happened."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    decision_id: Annotated[Identifier | None, Optional] = None
    prediction_id: Annotated[Identifier | None, Optional] = None
    kind: Annotated[KindName | None, Optional] = None
    entity_id: Annotated[Identifier | None, Optional] = None
    label: Label
    """Normalized to lowercase with underscores: ``Retained`` → ``retained``."""
    value_realized: RealizedValue = 0.0
    """Money realized (retained revenue, cost avoided…); ``value`` is accepted too."""
    observed_at: datetime
    note: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        given = [k for k in ("value_realized", "value") if k in data]
        value = next((data[k] for k in given if _blank_is_none(data[k]) is not None), None)
        data.pop("value", None)
        data.pop("value_realized", None)
        if value is not None:
            data["value_realized"] = value
        elif given:  # a value column or key left empty: not a 0 (trial 31)
            data["value_realized"] = _EMPTY
        if _blank_is_none(data.get("note")) is None:
            data.pop("note", None)
        return data

    @field_validator("value_realized", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is _EMPTY:
            raise ValueError("is empty: write the value realized, 0 when nothing was (an "
                             "empty value is not taken for 0: the latest outcome of a "
                             "prediction is the one a report counts)")
        return value

    @field_validator("observed_at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_time(value)

    @model_validator(mode="after")
    def _located(self) -> OutcomeRow:
        if not (self.decision_id or self.prediction_id or (self.kind and self.entity_id)):
            raise ValueError("needs decision_id, prediction_id, or kind and entity_id")
        return self


def parse_time(value: Any) -> datetime:
    """ISO-8601 with a zone (``2026-11-01T09:00:00Z``), a date (midnight UTC) or epoch
    seconds → aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < 1e11:
            raise ValueError("epoch seconds out of range")
        moment = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("must be an ISO-8601 time such as 2026-11-01T09:00:00Z") from None
        if len(text) == 10:  # a bare date
            moment = moment.replace(tzinfo=UTC)
    else:
        raise ValueError("must be an ISO-8601 time such as 2026-11-01T09:00:00Z")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("has no time zone: add Z or an offset (2026-11-01T09:00:00Z)")
    return moment.astimezone(UTC)


class UnmatchedRow(BaseModel):
    """A row that was not recorded, and why."""

    model_config = ConfigDict(frozen=True)

    row: int
    """1-based data row: the n-th CSV record after the header, JSONL line, record or query row."""
    line: int | None = None
    """File line where the row starts (a CSV header is line 1); ``None`` for records."""
    field: str | None = None
    reason: str
    value: str | None = None
    problem: Literal["invalid", "not_found", "conflict"] = "invalid"
    """``not_found``: no decision or prediction it names; ``conflict``: the outcome is
    recorded already with another value (outcomes are never overwritten)."""

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")
        what = f"{self.field}: " if self.field else ""
        tail = f" [got {self.value!r}]" if self.value is not None else ""
        return f"{where}: {what}{self.reason}{tail}"


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:_CLIP * 2])
    return text if len(text) <= _CLIP else text[:_CLIP - 1] + "…"


class _BadRow(str):
    """A row the reader could not turn into a record; the text says why, ``field`` which
    column (None: the row as a whole)."""

    field: str | None = None

    def __new__(cls, why: str, field: str | None = None) -> _BadRow:
        row = super().__new__(cls, why)
        row.field = field
        return row


Parsed = tuple[list[tuple[int, int | None, OutcomeRow]], list[UnmatchedRow]]
"""(row number, line, row) of the good rows, and the rows that failed."""


def parse_records(records: Iterable[tuple[int | None, Any]]) -> Parsed:
    """Validate (line, record) pairs; rows are numbered from 1 in order."""
    good: list[tuple[int, int | None, OutcomeRow]] = []
    bad: list[UnmatchedRow] = []
    for number, (line, record) in enumerate(records, start=1):
        if number > MAX_ROWS:
            raise InvalidInputError(f"more than {MAX_ROWS} rows; split the input")
        if isinstance(record, _BadRow):
            bad.append(UnmatchedRow(row=number, line=line, field=record.field,
                                    reason=str(record)))
            continue
        if not isinstance(record, Mapping):
            bad.append(UnmatchedRow(row=number, line=line, reason="must be a JSON object, not "
                                    f"{type(record).__name__}"))
            continue
        try:
            good.append((number, line, OutcomeRow.model_validate(dict(record))))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or None
                given = err.get("input") if err["type"] != "missing" and field else None
                bad.append(UnmatchedRow(row=number, line=line, field=field,
                                        reason=pydantic_message(err),
                                        value=None if given is None else _clip(given)))
    return good, bad


def read_outcome_file(path: str | os.PathLike[str], format: OutcomeFormat = "auto") -> Parsed:
    """Read outcome rows from a CSV (header row) or JSON Lines file."""
    location = os.fspath(path)
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            raise InvalidInputError(f"file is {size} bytes; the limit is {MAX_BYTES}",
                                    location=location)
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}", location=location) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (bad byte at offset {exc.start})",
                                location=location) from exc
    chosen = format
    if chosen == "auto":
        suffix = Path(path).suffix.lower()
        chosen = ("jsonl" if suffix in (".jsonl", ".ndjson", ".json")
                  else "csv" if suffix in (".csv", ".tsv")
                  else "jsonl" if text.lstrip().startswith("{") else "csv")
    if chosen == "jsonl":
        return parse_records(_jsonl(text))
    if chosen == "csv":
        return parse_records(_csv(text, location, "\t" if location.endswith(".tsv") else ","))
    raise InvalidInputError(f"unknown format {format!r}; use csv, jsonl or auto", field="format")


def _jsonl(text: str) -> Iterable[tuple[int | None, Any]]:
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except (ValueError, RecursionError):
            yield line, _BadRow(f"not valid JSON: {_clip(raw)}")


def _csv(text: str, location: str, delimiter: str) -> Iterable[tuple[int | None, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    while True:
        line = reader.line_num + 1  # the file line where the next record starts
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidInputError(f"unreadable CSV at line {line}: {exc}",
                                    location=location) from exc
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            _check_header(header, location)
        elif len(cells) < len(header):
            missing = header[len(cells):]
            yield line, _BadRow(f"has {len(cells)} cells; the header has {len(header)}: no cell "
                                f"for {', '.join(missing)} (an empty one is a trailing comma)",
                                field=missing[0])
        elif len(cells) > len(header):
            yield line, _BadRow(f"has {len(cells)} cells; the header has {len(header)} (a comma "
                                "inside a value needs the value in double quotes)")
        else:
            yield line, dict(zip(header, cells, strict=True))


def _check_header(header: list[str], location: str) -> None:
    present = set(header)
    missing = [c for c in ("label", "observed_at") if c not in present]
    if not (present & {"decision_id", "prediction_id"} or {"kind", "entity_id"} <= present):
        missing.append("decision_id, prediction_id, or kind and entity_id")
    if missing:
        raise InvalidInputError(f"the header lacks {'; '.join(missing)}; it has: "
                                f"{', '.join(_clip(h) for h in header[:30])}",
                                field="header", location=location)


def read_outcome_sql(url: str, query: str, *, limit: int = MAX_ROWS) -> Parsed:
    """Run a read-only SELECT against another database (SQLAlchemy URL) and parse its
    rows by column name, like a file's."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    if not re.match(r"^\s*(select|with)\b", query, re.IGNORECASE):
        raise InvalidInputError("must be a SELECT (or WITH … SELECT) query", field="query")
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise InvalidInputError(f"not a usable SQLAlchemy URL ({type(exc).__name__})",
                                field="url") from exc
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            elif engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = conn.execute(text(query))
            records = [dict(r._mapping) for r in result.fetchmany(limit + 1)]
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise InvalidInputError(f"the query failed: {type(cause).__name__}: "
                                f"{_clip(str(cause).splitlines()[0] if str(cause) else '')}",
                                field="query") from exc
    finally:
        engine.dispose()
    if len(records) > limit:
        raise InvalidInputError(f"more than {limit} rows; narrow the query", field="query")
    return parse_records((None, r) for r in records)
