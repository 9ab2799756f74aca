"""A prediction as the store keeps it (``PredictionRow``: its columns, its JSON and its
row hash), made once per row by ``prepare``, which applies ``kind_aliases`` first.

Making the row is the costly part of accepting a prediction after validating it
(serializing it and hashing that text), and like validation it needs nothing from the
store: a bulk read does both in its worker processes (``_parallel``) and hands the store
rows it only has to insert. ``PreparedChunk`` is a ``SourceBatch`` whose predictions are
already rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from decisionops.agent.hashing import merkle_leaf
from decisionops.agent.models import Prediction
from decisionops.agent.sources._aliases import apply_kind_aliases
from decisionops.agent.sources._batch import RowError, SourceBatch

__all__ = ["PredictionRow", "PreparedChunk", "prepare", "same_content"]

_NOTHING: frozenset[str] = frozenset()


class PredictionRow(NamedTuple):
    """One accepted prediction in the store's terms. ``payload`` is the prediction's JSON
    (``model_dump_json``), ``leaf`` its row hash (a Merkle leaf over that text); reading
    the payload back reproduces both."""

    id: str
    kind: str
    entity_type: str
    entity_id: str
    model: str
    model_version: str
    score: float
    value_at_stake: float | None
    observed_at: datetime
    expected_value: float | None
    payload: str
    leaf: bytes
    filled: frozenset[str] = _NOTHING
    """The fields the intake filled in rather than the sender (``SourceBatch.filled``),
    which ``same_content`` leaves out. Not stored: the payload is the prediction."""

    @classmethod
    def of(cls, prediction: Prediction, filled: frozenset[str] = _NOTHING) -> PredictionRow:
        p = prediction
        payload = p.model_dump_json()
        return cls(p.id, p.kind, p.entity_type, p.entity_id, p.model, p.model_version,
                   p.score, p.value_at_stake, p.observed_at, p.expected_value, payload,
                   merkle_leaf(payload.encode("utf-8")), filled)


def prepare(items: Iterable[Prediction | PredictionRow], aliases: Mapping[str, str],
            filled: Mapping[str, frozenset[str]] | None = None) -> list[PredictionRow]:
    """The rows of ``items`` with ``kind_aliases`` applied: every path into the store
    goes through here. A row made earlier passes as it is unless its kind is an alias
    (it was made without the table): then it is made again from its payload, keeping
    what it says was filled in. ``filled``: ``SourceBatch.filled`` of the predictions."""
    filled = filled or {}
    out: list[PredictionRow] = []
    for item in items:
        if isinstance(item, PredictionRow):
            if item.kind not in aliases:
                out.append(item)
                continue
            given, item = item.filled, Prediction.model_validate_json(item.payload)
        else:
            given = filled.get(item.id, _NOTHING)
        if item.kind in aliases:
            (item,) = apply_kind_aliases([item], aliases)
        out.append(PredictionRow.of(item, given))
    return out


def same_content(stored: str | Mapping[str, Any], row: PredictionRow) -> bool:
    """Whether ``row``, sent under an id the store already holds, says what the stored
    prediction says (``stored``: its JSON as the store reads it back, text on SQLite,
    parsed on PostgreSQL): the one definition of a re-send that is not a change. The
    fields the intake filled in (``row.filled``) are left out: a model-server response
    re-sent without a time gets the clock's time again and is still the same
    prediction; another score, feature or time the sender gave is other content."""
    if isinstance(stored, str):
        if stored == row.payload:
            return True
        stored = json.loads(stored)
    sent = json.loads(row.payload)
    if row.filled:
        stored = {k: v for k, v in stored.items() if k not in row.filled}
        sent = {k: v for k, v in sent.items() if k not in row.filled}
    return bool(stored == sent)


@dataclass(frozen=True, slots=True)
class PreparedChunk:
    """One chunk of a stream, ready to store: the rows, the data row number of each
    (``RowError.row``'s numbering), the rows that were skipped and the rows read."""

    rows: list[PredictionRow]
    numbers: list[int]
    errors: list[RowError]
    rows_read: int
    lines: list[int | None] = field(default_factory=list)
    """The file line of each row, where it has one."""
    empty_rows: int = 0
    """Rows read whose every cell is empty (``SourceBatch.empty_rows``)."""

    @classmethod
    def of(cls, batch: SourceBatch, aliases: Mapping[str, str]) -> PreparedChunk:
        return cls(prepare(batch.predictions, aliases, batch.filled), list(batch.numbers),
                   list(batch.errors), batch.rows_read, list(batch.lines), batch.empty_rows)
