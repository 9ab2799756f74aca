"""Model-server bodies: bounded JSON loading, and joining the rows of a request with the
scores of its response into ``SourceBatch`` chunks (a body is parsed whole, bounded by
``max_bytes``; its predictions are mapped and handed over a chunk at a time).

The MLflow and Open Inference Protocol shapes are read in ``_mlflow`` and ``_kserve``;
they hand this module aligned lists (request row, entity id, score) per prediction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from decisionops.agent.errors import InvalidInputError
from decisionops.agent.models import utcnow
from decisionops.agent.sources._batch import BatchBuilder, Problem, RowRejected, SourceBatch, SourceLimits
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._rows import Given, RowMapper, parse_timestamp

__all__ = ["Body", "fingerprint", "join", "load_body", "resolve_observed_at"]

Body = bytes | bytearray | str | dict[str, Any] | list[Any]
"""A JSON body as received (bytes or text) or already parsed."""
_BY_CLOCK = frozenset({"observed_at"})
"""What the intake fills in for a body that carries no time (``SourceBatch.filled``)."""


def load_body(body: Body, *, what: str, limits: SourceLimits) -> Any:
    """Parse ``body`` (``what`` is ``request`` or ``response``, for messages)."""
    if isinstance(body, dict | list):
        return body
    if not isinstance(body, bytes | bytearray | str):
        raise InvalidInputError(f"must be JSON bytes, text or a parsed object, not "
                                f"{type(body).__name__}", location=what)
    size = len(body) if not isinstance(body, str) else len(body.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise limits.too_large(what, size, what="body")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise InvalidInputError(f"not valid JSON: {exc}", location=what) from exc


def fingerprint(*bodies: Any) -> str:
    """A digest of parsed bodies, standing in for a response id so that re-delivering the
    same bytes derives the same prediction ids. Tolerates NaN, unlike canonical hashing."""
    text = json.dumps(bodies, sort_keys=True, separators=(",", ":"), default=str)
    return "body:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def resolve_observed_at(observed_at: datetime | str | float | None,
                        mapping: FieldMapping) -> datetime | None:
    """Validate the caller's ``observed_at`` once, not once per row."""
    if observed_at is None:
        return None
    try:
        return parse_timestamp(observed_at, mapping.zone)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="observed_at") from exc


def join(rows: Sequence[dict[str, Any]], entities: Sequence[Given],
         scores: Sequence[Given | Problem],
         mapping: FieldMapping, *, limits: SourceLimits, location: str,
         fallback: dict[str, Given] | None = None, observed_at: datetime | None = None,
         response_id: str | None = None, body_digest: str, batch_rows: int | None = None
         ) -> Iterator[SourceBatch]:
    """One prediction per (row, entity, score), in chunks of ``batch_rows`` (``None``: one
    chunk); a ``Problem`` in ``scores`` fails its row.

    Time: ``observed_at`` > the mapped request column or default > the clock. Ids (unless
    the mapping explicitly names an id column of the request) derive from model,
    version, kind, entity, the time (not when it came from the clock) and the response
    id, else ``body_digest`` when the time came from the clock: a re-delivered response
    maps onto the same ids. A time from the clock is the intake's, not the sender's
    (``SourceBatch.filled``): a re-delivery gets another and is the same content.
    """
    if "id" not in mapping.explicit_columns:
        # Request columns are model inputs; one that happens to be called "id" is
        # usually the entity's id, not a prediction id, so only an explicit mapping reads it.
        mapping = mapping.model_copy(update={"id": None})
    batch = BatchBuilder(limits, location=location)
    mapper = RowMapper(mapping, limits)
    anchor_id = f"response:{response_id}" if response_id else None
    time_column = mapping.column("observed_at")
    now = utcnow()
    for record, entity, score in zip(rows, entities, scores, strict=True):
        row = batch.next_row()
        if isinstance(score, Problem):
            batch.fail(row, [score])
        elif entity.value is None or (isinstance(entity.value, str) and not entity.value.strip()):
            batch.fail(row, [Problem("entity_id", entity.source, "missing: no entity id")])
        else:
            given = {"score": score, "entity_id": entity}
            has_time = observed_at is not None or "observed_at" in mapping.defaults or (
                time_column is not None and record.get(time_column) not in (None, ""))
            if observed_at is not None:
                given["observed_at"] = Given(observed_at, "observed_at")
            elif not has_time:
                given["observed_at"] = Given(now, "clock")
            anchor = anchor_id or (None if has_time else body_digest)
            try:
                prediction = mapper(record, given=given, fallback=fallback,
                                    time_in_id=has_time, anchor=anchor)
            except RowRejected as rejected:
                batch.fail(row, rejected.problems)
            else:
                batch.add(prediction, row, filled=frozenset() if has_time else _BY_CLOCK)
        if batch_rows and batch.pending >= batch_rows:
            yield batch.take()
    if batch.pending:
        yield batch.take()
