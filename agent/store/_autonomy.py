"""Earned autonomy's record (``agent.autonomy`` has the rules, ``agent.approvals`` applies
them): ``autonomy_answers``, one row per step class per answered request (who answered
how, when, in which decision), written in the transaction of the answer itself; and
``autonomy_classes``, each class's state (``promoted``, ``demoted``, ``revoked``) with
who changed it, why, and the evidence. A change of state is a ledger entry
(``autonomy.promoted``, ``autonomy.demoted``, ``autonomy.revoked``, ``autonomy.reinstated``)
carrying the same evidence. ``Store.autonomy``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    delete,
    distinct,
    func,
    insert,
    select,
    update,
)

from decisionops.agent.autonomy import Outcomes
from decisionops.agent.models import utcnow
from decisionops.agent.store._db import Repo, insert_or_skip
from decisionops.agent.store._outcome_tables import outcome_records
from decisionops.agent.store._tables import Time, metadata
from decisionops.agent.store.ledger import Event

__all__ = ["AutonomyRepo", "ClassState", "autonomy_answers", "autonomy_classes"]

autonomy_answers = Table(
    "autonomy_answers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("class_key", String(300), nullable=False),
    Column("function", String(64), nullable=False),
    Column("approval_id", String(64), nullable=False),
    Column("decision_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # approved, edited, rejected, revise, expired, autonomy
    Column("approver", String(200), nullable=False),
    Column("at", Time, nullable=False),
    Index("ix_autonomy_answers_class", "class_key", "at"),
    Index("ux_autonomy_answers_once", "approval_id", "class_key", "status", unique=True),
)

autonomy_classes = Table(
    "autonomy_classes", metadata,
    Column("class_key", String(300), primary_key=True),
    Column("function", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # promoted, demoted, revoked
    Column("changed_at", Time, nullable=False),
    Column("changed_by", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
)

_RECORD_ANSWER = insert_or_skip(autonomy_answers)
"""An answered step's class, once per request, class and status
(``ux_autonomy_answers_once``): every answer of every decision adds its classes."""


@dataclass(frozen=True)
class ClassState:
    key: str
    function: str
    state: str
    changed_at: datetime
    changed_by: str
    reason: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "function": self.function, "state": self.state,
                "changed_at": self.changed_at.isoformat(), "changed_by": self.changed_by,
                "reason": self.reason, "evidence": self.evidence}


def _state(row: Any) -> ClassState:
    return ClassState(row.class_key, row.function, row.state, row.changed_at, row.changed_by,
                      row.reason, row.evidence or {})


class AutonomyRepo(Repo):
    @staticmethod
    def record_answers(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Add answered steps' classes in ``conn``'s transaction (a replayed answer adds
        nothing: one row per request, class and status)."""
        if rows:
            conn.execute(_RECORD_ANSWER[conn.dialect.name], list(rows))

    def replace_answers(self, rows: Sequence[dict[str, Any]]) -> None:
        """The whole class record replaced by ``rows``, in one transaction."""
        with self.transaction(durable=True) as conn:
            conn.execute(delete(autonomy_answers))
            for i in range(0, len(rows), 1000):
                conn.execute(insert(autonomy_answers), list(rows[i:i + 1000]))

    @staticmethod
    def state(conn: Connection, key: str) -> ClassState | None:
        row = conn.execute(select(autonomy_classes)
                           .where(autonomy_classes.c.class_key == key)).first()
        return _state(row) if row is not None else None

    def get(self, key: str) -> ClassState | None:
        with self.reading() as conn:
            return self.state(conn, key)

    def states(self, function: str | None = None) -> list[ClassState]:
        query = select(autonomy_classes).order_by(autonomy_classes.c.class_key)
        if function is not None:
            query = query.where(autonomy_classes.c.function == function)
        with self.reading() as conn:
            return [_state(r) for r in conn.execute(query)]

    @staticmethod
    def answers(conn: Connection, key: str, *, since: datetime | None, limit: int
                ) -> list[tuple[str, str]]:
        """The class's answers newest first (status, approver), since ``since``."""
        query = (select(autonomy_answers.c.status, autonomy_answers.c.approver)
                 .where(autonomy_answers.c.class_key == key)
                 .order_by(autonomy_answers.c.at.desc(), autonomy_answers.c.id.desc())
                 .limit(limit))
        if since is not None:
            query = query.where(autonomy_answers.c.at > since)
        return [(r[0], r[1]) for r in conn.execute(query)]

    @staticmethod
    def counts(conn: Connection, key: str) -> dict[str, int]:
        return {status: n for status, n in conn.execute(
            select(autonomy_answers.c.status, func.count())
            .where(autonomy_answers.c.class_key == key).group_by(autonomy_answers.c.status))}

    @staticmethod
    def outcomes(conn: Connection, key: str, *, kind: str, success: Sequence[str]
                 ) -> tuple[Outcomes, Outcomes]:
        """Recorded outcomes of the decisions the class's steps were approved in, and of
        the control group of ``kind``."""
        won = func.sum(case((outcome_records.c.label.in_(list(success)), 1), else_=0))
        decided = (select(autonomy_answers.c.decision_id).distinct()
                   .where(autonomy_answers.c.class_key == key,
                          autonomy_answers.c.status.in_(["approved", "edited", "autonomy"])))
        treated = conn.execute(select(won, func.count()).where(
            outcome_records.c.arm == "treated",
            outcome_records.c.decision_id.in_(decided.scalar_subquery()))).one()
        control = conn.execute(select(won, func.count()).where(
            and_(outcome_records.c.arm == "control", outcome_records.c.kind == kind))).one()
        return (Outcomes(int(treated[0] or 0), int(treated[1])),
                Outcomes(int(control[0] or 0), int(control[1])))

    @staticmethod
    def change(conn: Connection, key: str, *, function: str, state: str, by: str, reason: str,
               evidence: dict[str, Any], now: datetime) -> Event:
        """Set the class's state in ``conn``'s transaction; the ledger event to record."""
        values = {"function": function, "state": state, "changed_at": now, "changed_by": by,
                  "reason": reason, "evidence": evidence}
        done = conn.execute(update(autonomy_classes)
                            .where(autonomy_classes.c.class_key == key).values(**values))
        if done.rowcount == 0:
            conn.execute(insert(autonomy_classes).values(class_key=key, **values))
        verb = {"promoted": "promoted", "demoted": "demoted", "revoked": "revoked"}[state]
        return Event(actor=by, event=f"autonomy.{verb}",
                     body={"class": key, "function": function, "reason": reason,
                           "evidence": evidence})

    def change_now(self, key: str, *, function: str, state: str, by: str, reason: str,
                   evidence: dict[str, Any], event: str | None = None) -> ClassState:
        """``change`` in a transaction of its own, with its ledger entry."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            entry = self.change(conn, key, function=function, state=state, by=by,
                                reason=reason, evidence=evidence, now=now)
            if event is not None:
                entry = entry.model_copy(update={"event": event})
            self.record(conn, [entry], now)
            found = self.state(conn, key)
        assert found is not None
        return found

    def requests_per_week(self, keys: Sequence[str], *, weeks: int = 4) -> dict[str, float]:
        """Per class, the human-answered requests a week over the last ``weeks`` weeks."""
        since = utcnow() - timedelta(weeks=weeks)
        with self.reading() as conn:
            rows = conn.execute(
                select(autonomy_answers.c.class_key,
                       func.count(distinct(autonomy_answers.c.approval_id)))
                .where(autonomy_answers.c.class_key.in_(list(keys)),
                       autonomy_answers.c.at > since,
                       autonomy_answers.c.status != "autonomy")
                .group_by(autonomy_answers.c.class_key))
            return {key: n / weeks for key, n in rows}

    def requests_per_week_taken(self, promoted: Collection[str], newly: Collection[str], *,
                                weeks: int = 4) -> float:
        """The human-answered requests a week, over the last ``weeks`` weeks, that these
        classes would have taken off people: each request once, when every class of its
        steps is in ``promoted`` and at least one is in ``newly``."""
        since = utcnow() - timedelta(weeks=weeks)
        classes: dict[str, set[str]] = {}
        with self.reading() as conn:
            for approval_id, key in conn.execute(
                    select(autonomy_answers.c.approval_id, autonomy_answers.c.class_key)
                    .where(autonomy_answers.c.approval_id.in_(
                        select(autonomy_answers.c.approval_id)
                        .where(autonomy_answers.c.class_key.in_(list(newly)),
                               autonomy_answers.c.at > since,
                               autonomy_answers.c.status != "autonomy")))):
                classes.setdefault(approval_id, set()).add(key)
        every, new = set(promoted) | set(newly), set(newly)
        return sum(1 for keys in classes.values() if keys <= every and keys & new) / weeks

    def in_order(self, function: str | None = None) -> list[Any]:
        """Every recorded class answer, oldest first (for a replay of the record)."""
        query = select(autonomy_answers).order_by(autonomy_answers.c.at, autonomy_answers.c.id)
        if function is not None:
            query = query.where(autonomy_answers.c.function == function)
        with self.reading() as conn:
            return list(conn.execute(query))

    def outcome_labels(self, decision_ids: Sequence[str]) -> dict[str, list[str]]:
        """decision id → the labels of its recorded (treated) outcomes."""
        out: dict[str, list[str]] = {}
        ids = sorted(set(decision_ids))
        with self.reading() as conn:
            for i in range(0, len(ids), 500):
                for decision_id, label in conn.execute(
                        select(outcome_records.c.decision_id, outcome_records.c.label)
                        .where(outcome_records.c.decision_id.in_(ids[i:i + 500]))):
                    out.setdefault(decision_id, []).append(label)
        return out

    def keys(self, function: str | None = None) -> list[tuple[str, str]]:
        """Every class with an answer on record: (key, function)."""
        query = (select(autonomy_answers.c.class_key, autonomy_answers.c.function)
                 .group_by(autonomy_answers.c.class_key, autonomy_answers.c.function)
                 .order_by(autonomy_answers.c.class_key))
        if function is not None:
            query = query.where(autonomy_answers.c.function == function)
        with self.reading() as conn:
            return [(r[0], r[1]) for r in conn.execute(query)]
