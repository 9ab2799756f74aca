"""What a read returns: ``SourceBatch`` with its ``RowError`` list, the ``SourceLimits``
that bound a read, and the private builder that assembles a batch row by row.

Row-level problems become ``RowError`` entries and the row is skipped; problems with
the whole input (too large, too many rows, unreadable, wrong shape) raise
``agent.errors.InvalidInputError`` instead. Mapping rows onto ``Prediction`` lives in
``_rows``; reading files and server bodies lives in ``_files``, ``_mlflow``, ``_kserve``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import Prediction

__all__ = ["Problem", "RowError", "RowRejected", "SourceBatch", "SourceLimits", "clip", "collect"]

_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_CLIP = 80


def clip(value: Any, limit: int = _CLIP) -> str:
    """``value`` as short, printable text for an error message: control and bidi
    characters escaped (a CSV cell must not drive the terminal), cut to ``limit``."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, ensure_ascii=False, default=str)
        except (ValueError, TypeError, RecursionError):
            value = repr(value)
    value = value[: limit * 4]  # bound the work before escaping
    value = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


class SourceLimits(BaseModel):
    """Bounds of one read. Exceeding ``max_bytes`` or ``max_rows`` refuses the whole input;
    a value over ``max_field_chars`` fails its row. The defaults take a nightly scoring
    of a million accounts; the API sets its own, per request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(1024 * 1024 * 1024, ge=1)
    """Largest file or body accepted (1 GiB)."""
    max_rows: int = Field(2_000_000, ge=1)
    """Most data rows (CSV records, JSONL lines, Parquet rows, predictions in a response)
    accepted."""
    max_field_chars: int = Field(10_000, ge=1)
    """Longest single value (cell, JSON string) accepted."""
    rows_advice: str = "split the input"
    """What a refusal over ``max_rows`` tells the caller's user to do, in the words of
    the adapter that set the limit (the CLI names its option, the API its per-request
    bound); the default suits a reader whose user cannot raise it."""
    bytes_advice: str = "split the input"
    """The same for ``max_bytes``."""

    def too_many_rows(self, location: str, count: int | None = None, *,
                      field: str | None = None) -> InvalidInputError:
        """The refusal of an input over ``max_rows`` (``count``: its rows, when known)."""
        found = (f"{count} rows, more than {self.max_rows}" if count is not None
                 else f"more than {self.max_rows} rows")
        return InvalidInputError(f"{found}; {self.rows_advice}", field=field,
                                 location=location, max_rows=self.max_rows)

    def too_large(self, location: str, size: int | None = None, *, what: str = "file",
                  field: str | None = None) -> InvalidInputError:
        """The refusal of a file or body over ``max_bytes`` (``size``, when known)."""
        found = (f"{what} is {size} bytes; the limit is {self.max_bytes} bytes"
                 if size is not None else f"{what} is over the limit of {self.max_bytes} bytes")
        return InvalidInputError(f"{found}: {self.bytes_advice}", field=field,
                                 location=location, max_bytes=self.max_bytes)


class RowError(BaseModel):
    """One problem with one row; the row was skipped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int
    """1-based data row: the n-th CSV record after the header, the n-th non-blank JSONL
    line, or the n-th prediction of a model-server response."""
    line: int | None = None
    """File line where the row starts, counting a CSV header as line 1; ``None`` for
    server bodies."""
    field: str | None
    """The ``Prediction`` field, dotted (``score``, ``features.region``); ``None`` when the
    row as a whole is unreadable."""
    source: str | None = None
    """Where the value came from: a column or key name, ``defaults.<field>``, or a JSON path."""
    message: str
    value: str | None = None
    """The offending raw value, printable and cut to about 80 characters."""

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"row {self.row}"

    @property
    def problem(self) -> str:
        """The problem without its place: ``field (column): message [got value]``."""
        return self.problem_with([self.value] if self.value is not None else [])

    def problem_with(self, values: list[str]) -> str:
        """``problem``, giving ``values`` (several rows' with this problem, in order)."""
        what = self.field or "row"
        if self.source and self.source != self.field:
            what += f" ({self.source})"
        tail = f" [got {', '.join(repr(v) for v in values)}]" if values else ""
        return f"{what}: {self.message}{tail}"


class SourceBatch(BaseModel):
    """The predictions read from one file or body (or one chunk of a stream), and the
    rows that were skipped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    predictions: list[Prediction]
    errors: list[RowError]
    rows_read: int
    """Data rows seen, good and bad (blank lines are not rows); in a chunk of a stream,
    the rows of that chunk."""
    numbers: list[int] = Field(default_factory=list)
    """The data row number of each prediction (``RowError.row``'s numbering)."""
    lines: list[int | None] = Field(default_factory=list)
    """The file line each prediction starts on (``RowError.line``'s), where it has one."""
    empty_rows: int = 0
    """Rows (among ``rows_read``) whose every cell is empty, as a spreadsheet leaves
    behind: nothing to store, nothing wrong; counted so that every row is accounted for."""
    filled: dict[str, frozenset[str]] = Field(default_factory=dict)
    """By prediction id, the fields the intake filled in rather than the sender (the
    clock's time, for a model-server body that carries none): not what the sender said,
    so a re-send that differs only in them is the same content (``same_content``)."""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def rejected(self) -> int:
        """Rows skipped (a row with three problems is one row)."""
        return len({e.row for e in self.errors})


def collect(chunks: Iterable[SourceBatch]) -> SourceBatch:
    """The chunks of a stream as one ``SourceBatch``."""
    predictions, errors, numbers, lines, rows, empty = [], [], [], [], 0, 0
    filled: dict[str, frozenset[str]] = {}
    for chunk in chunks:
        predictions += chunk.predictions
        errors += chunk.errors
        numbers += chunk.numbers
        lines += chunk.lines
        rows += chunk.rows_read
        empty += chunk.empty_rows
        filled.update(chunk.filled)
    return SourceBatch(predictions=predictions, errors=errors, rows_read=rows, numbers=numbers,
                       lines=lines, empty_rows=empty, filled=filled)


class Problem(NamedTuple):
    """A row problem before it knows its row number."""

    field: str | None
    source: str | None
    message: str
    value: Any = None


class RowRejected(Exception):
    """Raised by the row mapper, caught by the readers (never leaves the package);
    carries every problem found in the row."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems[0].message if problems else "row rejected")
        self.problems = problems


DERIVED_PREFIX = "prd_"
"""How the ids ``agent.sources._rows.derive_id`` makes begin."""


class BatchBuilder:
    """Counts rows, enforces ``max_rows``, drops duplicate ids and collects errors.

    ``take`` hands over what was collected so far as one chunk and starts the next one;
    row numbers run on across chunks, duplicates are caught within a chunk (the store
    catches the rest: an id it already holds is not stored twice)."""

    def __init__(self, limits: SourceLimits, *, location: str | None) -> None:
        self._limits = limits
        self._location = location
        self._seen: dict[str, int] = {}
        self.predictions: list[Prediction] = []
        self.numbers: list[int] = []
        self.lines: list[int | None] = []
        self.errors: list[RowError] = []
        self.filled: dict[str, frozenset[str]] = {}
        self.rows = 0
        self._taken = 0

    def next_row(self) -> int:
        self.rows += 1
        if self.rows > self._limits.max_rows:
            raise self._limits.too_many_rows(self._location)
        return self.rows

    @property
    def pending(self) -> int:
        """Rows read since the last ``take``."""
        return self.rows - self._taken

    def add(self, prediction: Prediction, row: int, line: int | None = None, *,
            filled: frozenset[str] = frozenset()) -> None:
        """``filled``: the fields of ``prediction`` the intake filled in
        (``SourceBatch.filled``)."""
        first = self._seen.get(prediction.id)
        if first is not None:
            message = f"duplicate id; the first one (row {first}) was kept"
            if prediction.id.startswith(DERIVED_PREFIX):  # an id the row did not give
                message += (
                    ". A row without an id gets one derived from model, model_version, "
                    f"kind, entity_id and observed_at: a second prediction about "
                    f"{clip(prediction.entity_id, 80)} at {prediction.observed_at.isoformat()} "
                    "(give each row an id, or its own observed_at)")
            self.errors.append(RowError(
                row=row, line=line, field="id", source=None, value=clip(prediction.id),
                message=message))
            return
        self._seen[prediction.id] = row
        self.predictions.append(prediction)
        self.numbers.append(row)
        self.lines.append(line)
        if filled:
            self.filled[prediction.id] = filled

    def fail(self, row: int, problems: list[Problem], line: int | None = None) -> None:
        for p in problems:
            self.errors.append(RowError(
                row=row, line=line, message=p.message,
                field=None if p.field is None else clip(p.field, 120),
                source=None if p.source is None else clip(p.source, 120),
                value=None if p.value is None else clip(p.value)))

    def take(self) -> SourceBatch:
        # Built from values this class validated: not checked again, item by item.
        batch = SourceBatch.model_construct(predictions=self.predictions, errors=self.errors,
                                            rows_read=self.rows - self._taken,
                                            numbers=self.numbers, lines=self.lines,
                                            filled=self.filled)
        self._seen, self.predictions, self.numbers, self.lines, self.errors = {}, [], [], [], []
        self.filled = {}
        self._taken = self.rows
        return batch

    def build(self) -> SourceBatch:
        return self.take()
