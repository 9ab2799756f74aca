"""Batch files: CSV and JSON Lines onto ``SourceBatch``.

A file is read whole (it is bounded by ``SourceLimits.max_bytes``) and decoded as UTF-8
(a BOM is allowed). Whole-file problems raise ``InvalidInputError``; bad rows are
reported and skipped. Row mapping lives in ``_rows``; model-server bodies elsewhere.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Literal, NoReturn

from agent.errors import InvalidInputError
from agent.sources._batch import BatchBuilder, Problem, RowRejected, SourceBatch, SourceLimits
from agent.sources._mapping import REQUIRED_FIELDS, TARGET_FIELDS, FieldMapping
from agent.sources._rows import to_prediction

__all__ = ["FileFormat", "read_csv", "read_file", "read_jsonl", "read_records"]

FileFormat = Literal["csv", "jsonl", "auto"]
Readable = str | os.PathLike[str] | IO[str] | IO[bytes]
"""A path, or an open text or binary stream."""

_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl"}


def read_file(path: str | os.PathLike[str], format: FileFormat = "auto",
              mapping: FieldMapping | None = None, *, limits: SourceLimits | None = None,
              delimiter: str | None = None) -> SourceBatch:
    """Read a CSV or JSONL file. ``auto`` goes by the suffix (``.csv``, ``.tsv``,
    ``.jsonl``, ``.ndjson``, ``.json``), else by the first character (``{`` → JSONL)."""
    limits = limits or SourceLimits()
    text, location = _read_text(path, limits)
    chosen = format
    if chosen == "auto":
        chosen = _SUFFIXES.get(Path(path).suffix.lower()) or (
            "jsonl" if text.lstrip().startswith("{") else "csv")
    if chosen not in ("csv", "jsonl"):
        raise InvalidInputError(f"unknown format {format!r}; use csv, jsonl or auto",
                                field="format")
    if chosen == "jsonl":
        return _parse_jsonl(text, mapping or FieldMapping(), limits, location)
    if delimiter is None:
        delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    return _parse_csv(text, mapping or FieldMapping(), limits, location, delimiter)


def read_csv(source: Readable, mapping: FieldMapping | None = None, *,
             limits: SourceLimits | None = None, delimiter: str = ",") -> SourceBatch:
    """Read CSV with a header row. ``RowError.line`` is the file line where the record
    starts (the header is line 1); ``RowError.row`` the record's number after the header."""
    limits = limits or SourceLimits()
    text, location = _read_text(source, limits)
    return _parse_csv(text, mapping or FieldMapping(), limits, location, delimiter)


def read_jsonl(source: Readable, mapping: FieldMapping | None = None, *,
               limits: SourceLimits | None = None) -> SourceBatch:
    """Read JSON Lines, one object per line; blank lines are skipped."""
    limits = limits or SourceLimits()
    text, location = _read_text(source, limits)
    return _parse_jsonl(text, mapping or FieldMapping(), limits, location)


def read_records(records: Iterable[Mapping[str, Any]], mapping: FieldMapping | None = None, *,
                 limits: SourceLimits | None = None, location: str = "records") -> SourceBatch:
    """Map already-parsed JSON objects (a webhook body's list) like JSONL lines;
    ``RowError.line`` is ``None``."""
    limits = limits or SourceLimits()
    mapping = mapping or FieldMapping()
    batch = BatchBuilder(limits, location=location)
    for record in records:
        row = batch.next_row()
        if not isinstance(record, Mapping):
            batch.fail(row, [Problem(None, None, f"must be a JSON object, not "
                                                 f"{type(record).__name__}", record)])
            continue
        _add(batch, row, None, record, mapping, limits)
    return batch.build()


def _add(batch: BatchBuilder, row: int, line: int | None, record: Mapping[str, Any],
         mapping: FieldMapping, limits: SourceLimits, *, text_cells: bool = False) -> None:
    try:
        prediction = to_prediction(record, mapping, limits=limits, text_cells=text_cells)
    except RowRejected as rejected:
        batch.fail(row, rejected.problems, line)
    else:
        batch.add(prediction, row, line)


# --------------------------------------------------------------------------- input


def _read_text(source: Readable, limits: SourceLimits) -> tuple[str, str]:
    cap = limits.max_bytes
    if isinstance(source, str | os.PathLike):
        location = os.fspath(source)
        try:
            size = os.stat(source).st_size
            if size > cap:
                _too_large(location, size, cap)
            with open(source, "rb") as handle:
                data: str | bytes = handle.read(cap + 1)
        except OSError as exc:
            raise InvalidInputError(f"cannot read: {exc.strerror or exc}",
                                    location=location) from exc
    else:
        location = str(getattr(source, "name", "<stream>"))
        data = source.read(cap + 1)
    if isinstance(data, str):
        if len(data) > cap or len(data.encode("utf-8", "surrogatepass")) > cap:
            _too_large(location, None, cap)
        return data.removeprefix("\ufeff"), location
    if len(data) > cap:
        _too_large(location, None, cap)
    try:
        return data.decode("utf-8-sig"), location
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"not UTF-8 text (bad byte at offset {exc.start})",
                                location=location) from exc


def _too_large(location: str, size: int | None, cap: int) -> NoReturn:
    what = f"{size} bytes" if size is not None else f"over {cap} bytes"
    raise InvalidInputError(f"file is {what}; the limit is {cap} bytes (max_bytes)",
                            location=location, max_bytes=cap)


# --------------------------------------------------------------------------- CSV


def _parse_csv(text: str, mapping: FieldMapping, limits: SourceLimits, location: str,
               delimiter: str) -> SourceBatch:
    batch = BatchBuilder(limits, location=location)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    header = _header(reader, mapping, location)
    if header is None:
        return batch.build()
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            batch.fail(batch.next_row(), [Problem(None, None, f"unreadable CSV: {exc}")], line)
            continue
        if all(not c.strip() for c in cells):
            continue  # blank line, or an empty row a spreadsheet left behind
        row = batch.next_row()
        if len(cells) != len(header):
            batch.fail(row, [Problem(None, None, f"has {len(cells)} cells; the header has "
                                                 f"{len(header)}")], line)
            continue
        record = {name: cell for name, cell in zip(header, cells, strict=True) if name}
        _add(batch, row, line, record, mapping, limits, text_cells=True)
    return batch.build()


def _header(reader: Any, mapping: FieldMapping, location: str) -> list[str] | None:
    """The first non-blank record, checked against the mapping; ``None`` for an empty file."""
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                break
        else:
            return None
    except csv.Error as exc:
        raise InvalidInputError(f"unreadable CSV header: {exc}", field="header",
                                location=location) from exc
    header = [c.strip() for c in cells]
    named = [h for h in header if h]
    dupes = sorted({h for h in named if named.count(h) > 1})
    if dupes:
        raise InvalidInputError(f"duplicate column names: {', '.join(dupes)}",
                                location=location)
    present = set(named)
    missing: list[str] = []
    for target in TARGET_FIELDS:
        column = mapping.column(target)
        if column is not None and column in present:
            continue
        if column is not None and target in mapping.explicit_columns:
            missing.append(f"{column!r} (for {target})")
        elif target in REQUIRED_FIELDS and target not in mapping.defaults:
            missing.append(f"{column!r} (for {target}, which has no default)" if column
                           else f"{target} (no column and no default)")
    missing += [f"{c!r} (a feature column)" for c in mapping.feature_columns
                if not c.endswith("*") and c not in present]
    if missing:
        shown = ", ".join(named[:30]) + (" …" if len(named) > 30 else "")
        raise InvalidInputError(f"the header lacks {'; '.join(missing)}; it has: {shown}",
                                field="header", location=location)
    return header


# --------------------------------------------------------------------------- JSON Lines


def _parse_jsonl(text: str, mapping: FieldMapping, limits: SourceLimits,
                 location: str) -> SourceBatch:
    batch = BatchBuilder(limits, location=location)
    # Only \n ends a record: str.splitlines would also split inside JSON strings
    # on \u2028, \x1c and friends.
    for line, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        row = batch.next_row()
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            batch.fail(row, [Problem(None, None, f"not valid JSON: {exc.msg} "
                                                 f"(column {exc.colno})", raw)], line)
            continue
        except RecursionError:
            batch.fail(row, [Problem(None, None, "nested too deeply", raw)], line)
            continue
        except ValueError:  # an integer past Python's digit limit
            batch.fail(row, [Problem(None, None, "a number has too many digits", raw)], line)
            continue
        if not isinstance(record, dict):
            batch.fail(row, [Problem(None, None, f"must be a JSON object, not "
                                                 f"{type(record).__name__}", raw)], line)
            continue
        _add(batch, row, line, record, mapping, limits)
    return batch.build()
