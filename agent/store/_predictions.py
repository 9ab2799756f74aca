"""Predictions: accepting them (idempotent by id), triage verdicts, and the reads that
triage, claiming and the ops views need."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from agent.errors import NotFoundError
from agent.models import Prediction, TriageAction, TriageVerdict, utcnow
from agent.store import _tables as t
from agent.store._db import Repo
from agent.store.ledger import Event

__all__ = ["IngestResult", "PredictionRepo"]

_CHUNK = 500
_PREDICTION_ROW = select(t.predictions).where(t.predictions.c.id == bindparam("id"))


@dataclass
class IngestResult:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unknown_kinds: list[str] = field(default_factory=list)
    """Kinds no playbook answers (ingested; triage will drop them)."""


class PredictionRepo(Repo):
    def ingest(self, predictions: Sequence[Prediction], *, source: str, actor: str
               ) -> IngestResult:
        """Insert predictions whose ids are new; one transaction, all or nothing."""
        result = IngestResult()
        now = utcnow()
        with self.transaction(durable=True) as conn:
            seen: set[str] = set()
            ids = [p.id for p in predictions]
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                seen.update(conn.scalars(select(t.predictions.c.id)
                                         .where(t.predictions.c.id.in_(chunk))))
            rows, events = [], []
            for p in predictions:
                if p.id in seen:
                    result.duplicates.append(p.id)
                    continue
                seen.add(p.id)
                result.new.append(p.id)
                rows.append({"id": p.id, "kind": p.kind, "entity_type": p.entity_type,
                             "entity_id": p.entity_id, "model": p.model,
                             "model_version": p.model_version, "score": p.score,
                             "value_at_stake": p.value_at_stake, "observed_at": p.observed_at,
                             "payload": p.model_dump(mode="json"), "source": source,
                             "ingested_at": now})
                events.append(Event(actor=actor, event="prediction.ingested",
                                    body={"prediction_id": p.id, "kind": p.kind,
                                          "entity_id": p.entity_id, "score": p.score,
                                          "source": source}))
            if rows:
                conn.execute(insert(t.predictions), rows)
                self.record(conn, events, now)
        return result

    def get(self, prediction_id: str) -> Prediction:
        with self.reading() as conn:
            payload = conn.scalar(select(t.predictions.c.payload)
                                  .where(t.predictions.c.id == prediction_id))
        if payload is None:
            raise NotFoundError(f"no prediction {prediction_id!r}", field="prediction_id")
        return Prediction.model_validate(payload)

    def row(self, prediction_id: str) -> dict[str, Any] | None:
        """The stored row: the prediction's columns with its triage verdict."""
        with self.reading() as conn:
            row = conn.execute(_PREDICTION_ROW, {"id": prediction_id}).first()
        return dict(row._mapping) if row else None

    def untriaged(self, limit: int = 1000) -> list[Prediction]:
        with self.reading() as conn:
            payloads = conn.scalars(select(t.predictions.c.payload)
                                    .where(t.predictions.c.triaged_at.is_(None))
                                    .order_by(t.predictions.c.observed_at, t.predictions.c.id)
                                    .limit(limit))
            return [Prediction.model_validate(p) for p in payloads]

    def last_acted(self, kind: str, entity_ids: Iterable[str]) -> dict[str, datetime]:
        """When each entity was last acted on for ``kind`` (by the prediction's time)."""
        out: dict[str, datetime] = {}
        ids = list(set(entity_ids))
        with self.reading() as conn:
            for i in range(0, len(ids), _CHUNK):
                rows = conn.execute(
                    select(t.predictions.c.entity_id, func.max(t.predictions.c.observed_at))
                    .where(t.predictions.c.kind == kind,
                           t.predictions.c.entity_id.in_(ids[i:i + _CHUNK]),
                           t.predictions.c.triage_action == TriageAction.ACT.value)
                    .group_by(t.predictions.c.entity_id))
                for entity_id, at in rows:
                    out[entity_id] = at
        return out

    def record_triage(self, verdicts: Sequence[TriageVerdict], *, actor: str) -> None:
        now = utcnow()
        with self.transaction() as conn:
            for v in verdicts:
                conn.execute(update(t.predictions).where(t.predictions.c.id == v.prediction_id)
                             .values(triage_action=v.action.value, triage_reason=v.reason,
                                     triage_detail=v.detail, playbook=v.playbook,
                                     expected_value=v.expected_value, triaged_at=now))
            self.record(conn, [Event(actor=actor, event="prediction.triaged",
                                     body=v.model_dump(mode="json", exclude={"detail"}))
                               for v in verdicts], now)

    def queue_depth(self) -> int:
        """Predictions waiting: not yet triaged, or actionable without a decision."""
        with self.reading() as conn:
            untriaged = conn.scalar(select(func.count()).select_from(t.predictions)
                                    .where(t.predictions.c.triaged_at.is_(None)))
            unstarted = conn.scalar(
                select(func.count()).select_from(t.predictions)
                .outerjoin(t.decisions, t.decisions.c.prediction_id == t.predictions.c.id)
                .where(t.predictions.c.triage_action == TriageAction.ACT.value,
                       t.decisions.c.id.is_(None)))
        return int(untriaged or 0) + int(unstarted or 0)

    def triage_counts(self) -> dict[tuple[str, str], int]:
        with self.reading() as conn:
            rows = conn.execute(select(t.predictions.c.triage_action, t.predictions.c.triage_reason,
                                       func.count()).group_by(t.predictions.c.triage_action,
                                                              t.predictions.c.triage_reason))
            return {(a or "untriaged", r or ""): n for a, r, n in rows}

    def of_entity(self, entity_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest predictions about an entity with their triage verdict and decision."""
        p, d = t.predictions, t.decisions
        query = (select(p.c.id, p.c.kind, p.c.score, p.c.value_at_stake, p.c.observed_at,
                        p.c.triage_action, p.c.triage_reason, p.c.triage_detail, p.c.playbook,
                        d.c.id.label("decision_id"), d.c.status.label("decision_status"))
                 .outerjoin(d, d.c.prediction_id == p.c.id).where(p.c.entity_id == entity_id)
                 .order_by(p.c.observed_at.desc()).limit(limit))
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
