"""Batch files: CSV, JSON Lines and Parquet onto ``SourceBatch``, streamed.

``iter_file`` reads a file in chunks of ``batch_rows`` rows, each a ``SourceBatch`` to
store before the next is read: memory stays bounded whatever the file's size. Before
the first chunk, everything that refuses the file as a whole is checked (its size, that
it is UTF-8 throughout, its row count when it may be over ``max_rows``, the header), so
a refused file stores nothing. ``read_file``/``read_csv``/``read_jsonl`` read it whole
into one ``SourceBatch``. Bad rows are reported and skipped. Row mapping lives in
``_rows``; model-server bodies elsewhere.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple, NoReturn

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.sources._batch import (
    BatchBuilder,
    Problem,
    RowRejected,
    SourceBatch,
    SourceLimits,
    collect,
)
from decisionops.agent.sources._mapping import REQUIRED_FIELDS, TARGET_FIELDS, FieldMapping
from decisionops.agent.sources._rows import RowMapper, decimal_floats

__all__ = ["ChunkMapper", "FileFormat", "RawChunk", "as_file", "iter_file", "open_file",
           "read_csv",
           "read_file", "read_jsonl", "read_records"]

FileFormat = Literal["csv", "jsonl", "json", "parquet", "auto"]
Readable = str | os.PathLike[str] | IO[str] | IO[bytes]
"""A path, or an open text or binary stream."""

_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_BLOCK = 1 << 20
_OPEN_QUOTE = ("a quoted value runs over several lines here: a quote left open in this row "
               "takes in the lines after it, rows included (close the quote, or double a "
               "quote meant as a character)")


def iter_file(path: str | os.PathLike[str], format: FileFormat = "auto",
              mapping: FieldMapping | None = None, *, limits: SourceLimits | None = None,
              delimiter: str | None = None, batch_rows: int | None = 5000
              ) -> Iterator[SourceBatch]:
    """Read a CSV, JSONL or Parquet file in chunks of ``batch_rows`` rows (``None``: one
    chunk). ``auto`` goes by the suffix (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``,
    ``.json``, ``.parquet``), else by the first bytes (``PAR1`` → Parquet, ``{`` → JSONL).
    Whole-file problems raise ``InvalidInputError`` before the first chunk."""
    mapper, chunks = open_file(path, format, mapping, limits=limits, delimiter=delimiter,
                               batch_rows=batch_rows)
    return map(mapper, chunks)


def open_file(path: str | os.PathLike[str], format: FileFormat = "auto",
              mapping: FieldMapping | None = None, *, limits: SourceLimits | None = None,
              delimiter: str | None = None, batch_rows: int | None = 5000
              ) -> tuple[ChunkMapper, Iterator[RawChunk]]:
    """``iter_file`` in two halves: the file's rows as read, in chunks of ``batch_rows``
    (counted and bounded by ``max_rows`` as they are read), and the ``ChunkMapper`` that
    makes each chunk a ``SourceBatch``, here or in another process. Whole-file problems
    (size, encoding, row count, header) raise ``InvalidInputError`` here."""
    limits = limits or SourceLimits()
    mapping = mapping or FieldMapping()
    location = os.fspath(path)
    chosen = format
    if chosen not in ("csv", "jsonl", "json", "parquet", "auto"):
        raise InvalidInputError(f"unknown format {format!r}; use csv, jsonl, json, parquet or "
                                "auto", field="format")
    size = _size(path, limits)
    if chosen == "auto":
        chosen = _SUFFIXES.get(Path(path).suffix.lower()) or _sniff(path)
    if chosen == "parquet":
        if format != "auto":
            _as_given(path, chosen, location)
        return _parquet_file(path, mapping, limits, location, batch_rows)
    if format != "auto" and _sniff(path) == "parquet":
        _as_given(path, chosen, location)  # before the text check (trial 29: "not UTF-8")
    lines = _prescan(path, location, size)  # first: a compressed file is named as such
    if format != "auto":
        _as_given(path, chosen, location)
    if chosen == "json":
        records = _json_array(path, limits, location, size)
        return (ChunkMapper("jsonl", mapping, limits, location),
                _chunked(records, limits, location, batch_rows))
    if chosen == "jsonl":
        if lines > limits.max_rows:
            _count_rows(_jsonl_rows(_open(path, "\n")), limits, location)
        return (ChunkMapper("jsonl", mapping, limits, location),
                _chunked(_jsonl_records(_open(path, "\n")), limits, location, batch_rows))
    if delimiter is None:
        delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    if lines > limits.max_rows + 1:  # maybe over: count the records, not the lines
        _count_rows(_csv_rows(_open(path, ""), delimiter), limits, location, header=True)
    return _csv_file(lambda: _open(path, ""), mapping, limits, location, delimiter, batch_rows)


def read_file(path: str | os.PathLike[str], format: FileFormat = "auto",
              mapping: FieldMapping | None = None, *, limits: SourceLimits | None = None,
              delimiter: str | None = None) -> SourceBatch:
    """``iter_file`` read whole into one ``SourceBatch``."""
    return collect(iter_file(path, format, mapping, limits=limits, delimiter=delimiter,
                             batch_rows=None))


def read_csv(source: Readable, mapping: FieldMapping | None = None, *,
             limits: SourceLimits | None = None, delimiter: str = ",") -> SourceBatch:
    """Read CSV with a header row. ``RowError.line`` is the file line where the record
    starts (the header is line 1); ``RowError.row`` the record's number after the header."""
    if isinstance(source, str | os.PathLike):
        return read_file(source, "csv", mapping, limits=limits, delimiter=delimiter)
    limits = limits or SourceLimits()
    text, location = _read_stream(source, limits)
    mapper, chunks = _csv_file(lambda: io.StringIO(text, newline=""), mapping or FieldMapping(),
                               limits, location, delimiter, None)
    return collect(map(mapper, chunks))


def read_jsonl(source: Readable, mapping: FieldMapping | None = None, *,
               limits: SourceLimits | None = None) -> SourceBatch:
    """Read JSON Lines, one object per line; blank lines are skipped."""
    if isinstance(source, str | os.PathLike):
        return read_file(source, "jsonl", mapping, limits=limits)
    limits = limits or SourceLimits()
    text, location = _read_stream(source, limits)
    mapper = ChunkMapper("jsonl", mapping or FieldMapping(), limits, location)
    return collect(map(mapper, _chunked(_jsonl_records(io.StringIO(text, newline="\n")),
                                        limits, location, None)))


def read_records(records: Iterable[Mapping[str, Any]], mapping: FieldMapping | None = None, *,
                 limits: SourceLimits | None = None, location: str = "records") -> SourceBatch:
    """Map already-parsed JSON objects (a webhook body's list) like JSONL lines;
    ``RowError.line`` is ``None``."""
    limits = limits or SourceLimits()
    mapper = RowMapper(mapping or FieldMapping(), limits)
    batch = BatchBuilder(limits, location=location)
    for record in records:
        row = batch.next_row()
        if not isinstance(record, Mapping):
            batch.fail(row, [Problem(None, None, f"must be a JSON object, not "
                                                 f"{type(record).__name__}", record)])
            continue
        _add(batch, mapper, row, None, record)
    return batch.build()


def _add(batch: BatchBuilder, mapper: RowMapper, row: int, line: int | None,
         record: Mapping[str, Any]) -> None:
    try:
        prediction = mapper(record)
    except RowRejected as rejected:
        batch.fail(row, rejected.problems, line)
    else:
        batch.add(prediction, row, line)


# --------------------------------------------------------------------------- input

STDIN = "-"
"""The path that names standard input."""


@contextmanager
def as_file(path: str | os.PathLike[str], limits: SourceLimits) -> Iterator[Path]:
    """``path`` as a file that can be read more than once: itself when it is one; ``-``
    (standard input), a pipe or a terminal copied to a temporary file first, bounded by
    ``max_bytes`` as it is copied. An input is read more than once: its encoding and
    its rows are checked whole before anything of it is stored."""
    stdin = os.fspath(path) == STDIN
    location = "standard input" if stdin else os.fspath(path)
    try:
        mode = None if stdin else os.stat(path).st_mode
        if mode is not None and stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "a folder, not a file")
        if mode is not None and stat.S_ISREG(mode):
            yield Path(path)
            return
        with tempfile.TemporaryDirectory(prefix="decisionops-input-") as folder:
            copy = Path(folder) / "input"
            source = sys.stdin.buffer if stdin else open(path, "rb")  # noqa: SIM115
            try:
                with copy.open("wb") as target:
                    copied = 0
                    while block := source.read(_BLOCK):
                        copied += len(block)
                        if copied > limits.max_bytes:
                            raise limits.too_large(location)
                        target.write(block)
            finally:
                if not stdin:
                    source.close()
            try:
                yield copy
            except InvalidInputError as exc:
                said_of_input(exc, copy, path)
                raise
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}",
                                location=location) from exc


def said_of_input(exc: InvalidInputError, read: Path, path: str | os.PathLike[str]) -> None:
    """A refusal of the copy ``as_file`` made of ``path`` (``read``), said of ``path``
    itself: standard input, not a temporary file's name."""
    if exc.location == str(read) and str(read) != os.fspath(path):
        exc.relocate("standard input" if os.fspath(path) == STDIN else os.fspath(path))


def _size(path: str | os.PathLike[str], limits: SourceLimits) -> int:
    location = os.fspath(path)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise InvalidInputError(f"cannot read: {exc.strerror or exc}", location=location) from exc
    if size > limits.max_bytes:
        raise limits.too_large(location, size)
    return size


def _sniff(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        start = handle.read(_BLOCK)
    if start.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if start.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"{") else "csv"


_SHAPES = {"csv": "CSV", "jsonl": "JSON Lines", "json": "a JSON array",
           "parquet": "Parquet"}


def is_native_body(document: Any) -> bool:
    """Whether a JSON document is the body ``POST /v1/predictions`` takes: an object
    whose one key ``predictions`` holds prediction rows (an MLflow response's holds
    scores; trial 29: the API's own body, saved, could not be ingested)."""
    rows = document.get("predictions") if isinstance(document, dict) else None
    return (isinstance(rows, list) and set(document) == {"predictions"} and bool(rows)
            and all(isinstance(r, dict) and "score" in r and "entity_id" in r for r in rows))


def _as_given(path: str | os.PathLike[str], chosen: str, location: str) -> None:
    """Refuse a format the file's start contradicts, once for the whole file: read as
    the wrong format, every row would be refused on its own with a parse error."""
    with open(path, "rb") as handle:
        start = handle.read(_BLOCK)
    first = start.removeprefix(codecs.BOM_UTF8).lstrip()[:1]
    if start.startswith(b"PAR1"):
        looks = "parquet"
    elif first == b"[":
        looks = "json"
    elif first == b"{":
        if chosen == "json":
            return  # one object: the API's body maybe, the reader says if it is not
        looks = "jsonl"
    elif not first or b"{" in start.split(b"\n", 1)[0]:
        return  # empty, or a line with an object in it: read as given, row by row
    else:
        looks = "csv"
    if looks != chosen:
        raise InvalidInputError(
            f"{location}: format {chosen} was given, but the file starts like "
            f"{_SHAPES[looks]}; give format {looks}, or auto to go by its suffix and shape",
            field="format")


def _prescan(path: str | os.PathLike[str], location: str, size: int) -> int:
    """Check the file is UTF-8 throughout, before any of it is stored; returns its line
    count (an upper bound of its rows)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = offset = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                if offset == 0:
                    _not_compressed(location, block)
                _not_utf8(location, offset + exc.start,
                          lines + block.count(b"\n", 0, exc.start) + 1)
            lines += block.count(b"\n")
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            _not_utf8(location, size - 1, lines + 1)
    return lines + 1


def _open(path: str | os.PathLike[str], newline: str) -> IO[str]:
    """The file as text, past a BOM (plain UTF-8 decodes faster than ``utf-8-sig``)."""
    stream = open(path, encoding="utf-8", newline=newline)  # noqa: SIM115 (the reader closes it)
    if stream.read(1) != "\ufeff":
        stream.seek(0)
    return stream


def _count_rows(rows: Iterator[None], limits: SourceLimits, location: str, *,
                header: bool = False) -> None:
    """Refuse a file over ``max_rows`` before its first chunk is stored."""
    count = -1 if header else 0
    for _ in rows:
        count += 1
        if count > limits.max_rows:
            raise limits.too_many_rows(location)


def _csv_rows(stream: IO[str], delimiter: str) -> Iterator[None]:
    """The header and the rows after it, as ``_csv_records`` numbers them."""
    headed = False
    with stream:
        reader = csv.reader(stream, delimiter=delimiter, strict=False)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield None  # a row the stream reports as unreadable
                continue
            if any(c.strip() for c in cells):
                headed = True
                yield None
            elif headed and len(cells) > 1:  # a row of empty cells
                yield None


def _jsonl_rows(stream: IO[str]) -> Iterator[None]:
    with stream:
        for raw in stream:
            if raw.strip():
                yield None


def _read_stream(source: IO[str] | IO[bytes], limits: SourceLimits) -> tuple[str, str]:
    """An open stream, read whole (bounded by ``max_bytes``)."""
    cap = limits.max_bytes
    location = str(getattr(source, "name", "<stream>"))
    data = source.read(cap + 1)
    if isinstance(data, str):
        if len(data) > cap or len(data.encode("utf-8", "surrogatepass")) > cap:
            raise limits.too_large(location)
        return data.removeprefix("\ufeff"), location
    if len(data) > cap:
        raise limits.too_large(location)
    try:
        return data.decode("utf-8-sig"), location
    except UnicodeDecodeError as exc:
        _not_utf8(location, exc.start, data.count(b"\n", 0, exc.start) + 1)


_COMPRESSED = {b"\x1f\x8b": ("gzip", "gunzip -c"), b"BZh": ("bzip2", "bunzip2 -c"),
               b"\xfd7zXZ\x00": ("xz", "xz -dc"), b"\x28\xb5\x2f\xfd": ("zstd", "zstd -dc"),
               b"PK\x03\x04": ("zip", "unzip -p")}


def _not_compressed(location: str, start: bytes) -> None:
    """Refuse a compressed file by name (its bytes are not text), saying how to read it."""
    for magic, (kind, command) in _COMPRESSED.items():
        if start.startswith(magic):
            raise InvalidInputError(
                f"a {kind}-compressed file: ingest reads CSV, JSON Lines, JSON or Parquet as "
                f"they are; decompress it first ({command} FILE | decisionops ingest - "
                "--format …)", location=location)


def _not_utf8(location: str, offset: int, line: int) -> NoReturn:
    raise InvalidInputError(f"not UTF-8 text (bad byte at offset {offset}, line {line})",
                            location=location, line=line)


# --------------------------------------------------------------------------- CSV


def _csv_file(opener: Callable[[], IO[str]], mapping: FieldMapping, limits: SourceLimits,
              location: str, delimiter: str, batch_rows: int | None
              ) -> tuple[ChunkMapper, Iterator[RawChunk]]:
    """The header is read and checked now (a bad one, or none: an empty file, refuses the
    file); the rows after it when the chunks are."""
    with opener() as stream:
        lines = _Lines(stream)
        header = _header(csv.reader(lines, delimiter=delimiter, strict=False), mapping,
                         location, lines)
    if header is None:
        # An export whose job failed comes out empty; a day without predictions still
        # has its header line. Say so rather than report "0 rows" as a success.
        raise InvalidInputError("the file is empty: a CSV starts with a header row naming "
                                "its columns (nothing stored)", field="header",
                                location=location, line=1)
    return (ChunkMapper("csv", mapping, limits, location, header),
            _chunked(_csv_records(opener(), delimiter), limits, location, batch_rows))


class _Lines:
    """A text stream's lines for ``csv.reader``, noting when the reader asked past the
    last one: it does only inside a quoted value that is never closed (a record
    otherwise ends with its line), which it then returns with the rest of the file in
    it."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines = iter(stream)
        self.ended = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.ended = True
            raise


def _csv_records(stream: IO[str], delimiter: str) -> Iterator[tuple[int | None, Any]]:
    with stream:
        lines = _Lines(stream)
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        for cells in reader:  # past the header: the first record with a value
            if any(c.strip() for c in cells):
                break
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, Failed([Problem(None, None, f"unreadable CSV: {exc}")])
                continue
            if lines.ended:  # the rows after the quote are in this one's last value
                yield line, Failed([Problem(None, None, (
                    f"a quoted value is never closed: it runs from here to the end of the "
                    f"file (lines {line}-{reader.line_num}); the rows in those lines were "
                    "not read. Close the quote, or double a quote meant as a character"))])
                return
            if all(not c.strip() for c in cells):
                if len(cells) > 1:  # a row a spreadsheet left behind: counted, not stored
                    yield line, Empty()
                continue  # a blank line is not a row
            yield line, cells


def _chunked(records: Iterator[tuple[int | None, Any]], limits: SourceLimits, location: str,
             batch_rows: int | None) -> Iterator[RawChunk]:
    """Records as read, numbered as data rows (bounded by ``max_rows``), in chunks of
    ``batch_rows`` (``None``: one chunk)."""
    counter = BatchBuilder(limits, location=location)  # counts rows against max_rows
    chunk: RawChunk = []
    for line, item in records:
        chunk.append((counter.next_row(), line, item))
        if batch_rows and len(chunk) >= batch_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _header(reader: Any, mapping: FieldMapping, location: str, lines: _Lines
            ) -> list[str] | None:
    """The first non-blank record, checked against the mapping; ``None`` for an empty file.
    ``lines``: what ``reader`` reads, to tell a quote the header never closes."""
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                break
            start = reader.line_num + 1
        else:
            return None
    except csv.Error as exc:
        raise InvalidInputError(f"unreadable CSV header: {exc}", field="header",
                                location=location, line=start) from exc
    if lines.ended:
        raise InvalidInputError(
            f"a quoted value is never closed: it runs from line {start} to the end of the "
            "file. Close the quote, or double a quote meant as a character", field="header",
            location=location, line=start)
    header = [c.strip() for c in cells]
    _check_columns(header, mapping, location)
    return header


def _check_columns(header: list[str], mapping: FieldMapping, location: str) -> None:
    """The columns must be named once each and hold what the mapping reads."""
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
        raise InvalidInputError(f"the header lacks {'; '.join(missing)}; it has: {shown}"
                                + _header_hint(named, mapping), field="header",
                                location=location)


def _header_hint(named: list[str], mapping: FieldMapping) -> str:
    """What a header that lacks columns most likely got wrong (trial 22: a ``;``-separated
    file and a header in capitals were told only which columns are missing)."""
    if len(named) == 1 and (sep := next((c for c in ";|\t" if c in named[0]), None)):
        return (f" (one column: the file looks {'tab' if sep == chr(9) else repr(sep)}"
                "-separated; a CSV here is comma-separated, tab-separated as .tsv)")
    wanted = {c for t in TARGET_FIELDS if (c := mapping.column(t))}
    cased = sorted(h for h in named if h not in wanted and h.lower() in wanted)
    if cased:
        return (f" (column names are matched as written: {', '.join(map(repr, cased))} "
                "differ only in letter case; rename them, or map them with --mapping)")
    return ""


# --------------------------------------------------------------------------- JSON Lines


def _jsonl_records(stream: IO[str]) -> Iterator[tuple[int | None, Any]]:
    # The stream splits on "\n" only: str.splitlines would also split inside JSON
    # strings on \u2028, \x1c and friends.
    with stream:
        for line, raw in enumerate(stream, start=1):
            raw = raw.removesuffix("\n").removesuffix("\r")
            if raw.strip():
                yield line, raw


_JSON_DOCUMENT_BYTES = 256 * 2**20
"""Largest JSON array read (whole: a document does not stream; JSON Lines does)."""


def _json_array(path: str | os.PathLike[str], limits: SourceLimits, location: str, size: int
                ) -> Iterator[tuple[int | None, Any]]:
    """A JSON document that is an array: its elements as JSON Lines' rows (each element's
    text; no line numbers). The document is parsed and counted now, before any row is
    stored."""
    if size > _JSON_DOCUMENT_BYTES:
        raise InvalidInputError(f"a JSON array of {size} bytes is read whole; the limit is "
                                f"{_JSON_DOCUMENT_BYTES} bytes: write it as JSON Lines (one "
                                "prediction a line), which streams", location=location)
    with _open(path, "\n") as stream:
        try:
            document = json.load(stream)
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"not a JSON document: {exc}", location=location) from exc
    if is_native_body(document):  # the body POST /v1/predictions takes, saved to a file
        document = document["predictions"]
    if not isinstance(document, list):
        raise InvalidInputError(f"a JSON document of predictions must be an array (or the "
                                f"API's body, {{\"predictions\": [...]}}), not "
                                f"{type(document).__name__}", location=location)
    if len(document) > limits.max_rows:
        raise limits.too_many_rows(location, len(document))
    return ((None, json.dumps(item, allow_nan=True)) for item in document)


def _json_row(batch: BatchBuilder, row: int, line: int | None, raw: str
              ) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        problem = "nested too deeply"
    except ValueError:  # an integer past Python's digit limit
        problem = "a number has too many digits"
    else:
        if isinstance(record, dict):
            return record
        problem = f"must be a JSON object, not {type(record).__name__}"
    batch.fail(row, [Problem(None, None, problem, raw)], line)
    return None


# --------------------------------------------------------------------------- Parquet


def _parquet_file(path: str | os.PathLike[str], mapping: FieldMapping, limits: SourceLimits,
                  location: str, batch_rows: int | None
                  ) -> tuple[ChunkMapper, Iterator[RawChunk]]:
    """Parquet rows as records (typed values: numbers, times, structs as objects);
    ``RowError.line`` is ``None``. The row count comes from the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InvalidInputError(f"not a readable Parquet file: {exc}", location=location) from exc
    with parquet:
        rows = parquet.metadata.num_rows
        names = list(parquet.schema_arrow.names)
    if rows > limits.max_rows:
        raise limits.too_many_rows(location)
    _check_columns(names, mapping, location)
    return (ChunkMapper("parquet", mapping, limits, location, names),
            _chunked(_parquet_records(path, batch_rows), limits, location, batch_rows))


def _parquet_records(path: str | os.PathLike[str], batch_rows: int | None
                     ) -> Iterator[tuple[int | None, Any]]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for records in parquet.iter_batches(batch_size=min(batch_rows or 65_536, 65_536)):
            for record in decimal_floats(records).to_pylist():
                yield None, record


# --------------------------------------------------------------------------- mapping


class Failed(NamedTuple):
    """A row that failed as it was read (unreadable CSV): its problems."""

    problems: list[Problem]


class Empty(NamedTuple):
    """A CSV row whose every cell is empty (``,,,,`` as a spreadsheet leaves behind): a
    row, counted as ``empty_rows``; nothing to store and nothing wrong with it."""


def _swallowed(cell: str, columns: int) -> bool:
    """Whether a quoted value's later lines look like rows (half a row's separators or
    more): a quote left open took them in. A value written over lines on purpose does
    not (trial 22: it was told of a quote left open)."""
    least = max(2, (columns - 1) // 2)
    return any(max(part.count(","), part.count("\t")) >= least
               for part in cell.split("\n")[1:])


RawChunk = list[tuple[int, int | None, Any]]
"""Rows as read, not mapped: (data row, file line or ``None``, what was read) — a CSV
record's cells, a JSONL line's text, a Parquet record, ``Failed`` or ``Empty``."""


class ChunkMapper:
    """Makes a ``RawChunk`` of one file a ``SourceBatch``: the rows mapped onto
    predictions by the file's ``FieldMapping``, bad rows as ``RowError`` entries, an id
    repeated within the chunk rejected. It pickles as its arguments, so a bulk read can
    run it in worker processes (``_parallel``); the result is the same either way."""

    def __init__(self, fmt: Literal["csv", "jsonl", "parquet"], mapping: FieldMapping,
                 limits: SourceLimits, location: str, header: list[str] | None = None
                 ) -> None:
        self._args = (fmt, mapping, limits, location, header)
        self._fmt, self._limits, self._location = fmt, limits, location
        self._header = header or []
        self._unnamed = "" in self._header
        self._mapper = RowMapper(mapping, limits, text_cells=fmt == "csv")
        if header is not None:
            self._mapper.bind_header([h for h in header if h])

    def __reduce__(self) -> tuple[Any, ...]:
        return ChunkMapper, self._args

    def __call__(self, chunk: RawChunk) -> SourceBatch:
        batch = BatchBuilder(self._limits, location=self._location)
        mapper, header, fmt = self._mapper, self._header, self._fmt
        empty = 0
        for row, line, item in chunk:
            if type(item) is Failed:
                batch.fail(row, item.problems, line)
                continue
            if type(item) is Empty:
                empty += 1
                continue
            if fmt == "csv":
                if len(item) != len(header):
                    batch.fail(row, [Problem(None, None, f"has {len(item)} cells; the header "
                                                         f"has {len(header)}")], line)
                    continue
                record = ({n: c for n, c in zip(header, item, strict=True) if n}
                          if self._unnamed else dict(zip(header, item, strict=True)))
            elif fmt == "jsonl":
                record = _json_row(batch, row, line, item)
                if record is None:
                    continue
            else:
                record = item
            errors = len(batch.errors)
            _add(batch, mapper, row, line, record)
            if fmt == "csv" and len(batch.errors) > errors and any(
                    _swallowed(c, len(header)) for c in item):
                # A refused row whose quoted value ran over lines holding rows: likely a
                # quote left open, which took the rows after it into this one (not
                # stored, not named otherwise).
                batch.fail(row, [Problem(None, None, _OPEN_QUOTE)], line)
        # Built from values the builder validated: not checked again, item by item.
        return SourceBatch.model_construct(predictions=batch.predictions, errors=batch.errors,
                                           rows_read=len(chunk), numbers=batch.numbers,
                                           lines=batch.lines, empty_rows=empty)
