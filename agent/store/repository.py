"""``Store``: reads and writes of predictions, decisions, plans, approvals, executions,
outcomes and the ledger. Persistence only: no policy, no graph, no tools."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text, update

from agent.errors import ConflictError, NotFoundError
from agent.models import (
    ApprovalStatus,
    DecisionStatus,
    Plan,
    Prediction,
    TriageAction,
    TriageVerdict,
    utcnow,
)
from agent.store import _tables as t
from agent.store import ledger as _ledger
from agent.store._archive import ArchiveRecords
from agent.store._claims import ClaimRecords
from agent.store._engine import HEAD_REVISION, create_store_engine, current_revision, upgrade
from agent.store._llm import LLMRecords
from agent.store._ops import OpsRecords
from agent.store._outcomes import OutcomeRecords
from agent.store._references import hydrate_arguments
from agent.store._service import ServiceRecords
from agent.store._work import FinishedCalls, WorkRecords
from agent.store.ledger import Event, LedgerEntry

__all__ = ["IngestResult", "Store"]

_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")

_CHUNK = 500

# Statements of the per-decision path, built once: building a statement with its values
# inline costs more than executing it on SQLite.
_PREDICTION_ROW = select(t.predictions).where(t.predictions.c.id == bindparam("id"))
_DECISION_ROW = select(t.decisions).where(t.decisions.c.id == bindparam("id"))
_DECISION_EXISTS = select(t.decisions.c.id).where(t.decisions.c.id == bindparam("id"))
_INSERT_DECISION = insert(t.decisions)
_SET_STATUS = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
               .values(status=bindparam("st"), updated_at=bindparam("at"),
                       error=bindparam("er")))
_FINISH_DECISION = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
                    .values(status=bindparam("st"), updated_at=bindparam("at"),
                            error=bindparam("er"), finished_at=bindparam("at"),
                            lease_owner=None, lease_until=None))
_PLAN_KEY = ((t.plans.c.decision_id == bindparam("d")) & (t.plans.c.version == bindparam("v")))
_PLAN_EXISTS = select(t.plans.c.hash, t.plans.c.verdict, t.plans.c.meta).where(_PLAN_KEY)
_PLAN_BODY = select(t.plans.c.body).where(_PLAN_KEY)
_INSERT_PLAN = insert(t.plans)
_INSERT_STEPS = insert(t.plan_steps)
_SET_PLAN = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
             .values(plan_version=bindparam("v"), plan_hash=bindparam("h"),
                     updated_at=bindparam("at")))


@dataclass
class IngestResult:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unknown_kinds: list[str] = field(default_factory=list)
    """Kinds no playbook answers (ingested; triage will drop them)."""


class Store(LLMRecords, OutcomeRecords, ClaimRecords, OpsRecords, WorkRecords, ServiceRecords,
            ArchiveRecords):
    """Our tables. Construct with :meth:`open`, which migrates the schema to head."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time. Threads of this process queue on this lock,
        # where the hand-over is immediate, instead of in SQLite's busy handler, which
        # sleeps (1, 2, 5 … 100 ms). Other processes still queue on busy_timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self._sqlite else nullcontext())

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        engine = create_store_engine(url)
        if migrate and current_revision(engine) != HEAD_REVISION:
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Connection]:
        """A write transaction. ``durable`` ones are synced to disk before they return
        (on SQLite: ``synchronous=FULL`` for this commit; PostgreSQL always syncs)."""
        if not self._sqlite:
            with self.engine.begin() as conn:
                if not durable:
                    # The same trade as SQLite's NORMAL: the commit does not wait for the
                    # WAL flush. A worker crash loses nothing; a database server crash
                    # may lose the newest such commits, never half of one.
                    conn.execute(_ASYNC_COMMIT)
                yield conn
            return
        if not durable:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA synchronous=FULL")
            try:
                with conn.begin():
                    yield conn
            finally:
                raw.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(read_only=True)
            yield conn

    def record(self, conn: Connection, events: Iterable[Event], at: datetime | None = None
               ) -> list[LedgerEntry]:
        return _ledger.append(conn, events, at=at or utcnow())

    # ------------------------------------------------------------------ predictions

    def ingest(self, predictions: Sequence[Prediction], *, source: str, actor: str) -> IngestResult:
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

    def prediction(self, prediction_id: str) -> Prediction:
        with self.reading() as conn:
            payload = conn.scalar(select(t.predictions.c.payload)
                                  .where(t.predictions.c.id == prediction_id))
        if payload is None:
            raise NotFoundError(f"no prediction {prediction_id!r}", field="prediction_id")
        return Prediction.model_validate(payload)

    def prediction_row(self, prediction_id: str) -> dict[str, Any] | None:
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

    def actionable_without_decision(self, limit: int = 1000) -> list[str]:
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.predictions.c.id)
                .outerjoin(t.decisions, t.decisions.c.prediction_id == t.predictions.c.id)
                .where(t.predictions.c.triage_action == TriageAction.ACT.value,
                       t.decisions.c.id.is_(None))
                .order_by(t.predictions.c.observed_at, t.predictions.c.id).limit(limit)))

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

    # ------------------------------------------------------------------ decisions

    def create_decision(self, decision_id: str, prediction: Prediction, *, playbook: str | None,
                        expected_value: float | None, actor: str, lease_seconds: float
                        ) -> int | None:
        """Insert the decision row with ``actor`` holding its lease; return the fencing
        token, or None when the decision already exists."""
        now = utcnow()
        with self.transaction() as conn:
            if conn.scalar(_DECISION_EXISTS, {"id": decision_id}):
                return None
            conn.execute(_INSERT_DECISION, {
                "id": decision_id, "prediction_id": prediction.id, "kind": prediction.kind,
                "entity_id": prediction.entity_id, "playbook": playbook,
                "status": DecisionStatus.PLANNING.value, "plan_version": 0,
                "expected_value": expected_value, "created_at": now, "updated_at": now,
                "fence": 1, "lease_owner": actor,
                "lease_until": now + timedelta(seconds=lease_seconds)})
            self.record(conn, [Event(actor=actor, event="decision.started",
                                     decision_id=decision_id,
                                     body={"prediction_id": prediction.id,
                                           "playbook": playbook})], now)
        return 1

    def decision(self, decision_id: str) -> dict[str, Any]:
        with self.reading() as conn:
            row = conn.execute(_DECISION_ROW, {"id": decision_id}).first()
        if row is None:
            raise NotFoundError(f"no decision {decision_id!r}", field="decision_id")
        return dict(row._mapping)

    def decisions(self, *, status: str | None = None, kind: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        query = select(t.decisions).order_by(t.decisions.c.updated_at.desc()).limit(limit)
        if status:
            query = query.where(t.decisions.c.status == status)
        if kind:
            query = query.where(t.decisions.c.kind == kind)
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def decision_counts(self) -> dict[str, int]:
        with self.reading() as conn:
            return dict(conn.execute(select(t.decisions.c.status, func.count())  # type: ignore[arg-type]
                                     .group_by(t.decisions.c.status)).all())

    def set_status(self, decision_id: str, status: DecisionStatus, *, fence: int | None,
                   actor: str, error: str | None = None, body: dict[str, Any] | None = None,
                   plan_hash: str | None = None, finished: FinishedCalls | None = None) -> None:
        """Set the decision's status; a terminal one releases the lease and is durable.
        ``finished``: results of tool calls not recorded yet (the executor's last wave),
        recorded first in the same transaction (``finish_calls``)."""
        now = utcnow()
        with self.transaction(durable=status.terminal) as conn:
            self.check_fence(conn, decision_id, fence)
            events = (self._finish(conn, decision_id, finished.plan_version, finished.plan_hash,
                                   finished.calls, actor, now) if finished else [])
            # A finished decision needs no lease: release it in the same commit.
            conn.execute(_FINISH_DECISION if status.terminal else _SET_STATUS,
                         {"d": decision_id, "st": status.value, "at": now, "er": error})
            events.append(Event(actor=actor, event=f"decision.{status.value}",
                                decision_id=decision_id, plan_hash=plan_hash,
                                body={**(body or {}), **({"error": error} if error else {})}))
            self.record(conn, events, now)

    # ------------------------------------------------------------------ plans

    def save_plan(self, plan: Plan, *, verdict: str, problems: Sequence[str] = (),
                  actor: str, fence: int | None, supersede_previous: bool = False,
                  record: dict[str, Any] | None = None) -> None:
        """Store a plan version with the guard's verdict (``drafted`` before the guard,
        ``accepted`` or ``refused`` after). Idempotent; a ``drafted`` version is replaced by
        its guarded form (the guard normalizes arguments)."""
        now = utcnow()
        with self.transaction() as conn:
            self.check_fence(conn, plan.decision_id, fence)
            self.record(conn, self.store_plan(conn, plan, verdict=verdict, problems=problems,
                                              actor=actor, supersede_previous=supersede_previous,
                                              record=record, now=now), now)

    @staticmethod
    def store_plan(conn: Connection, plan: Plan, *, verdict: str, problems: Sequence[str] = (),
                   actor: str, supersede_previous: bool = False,
                   record: dict[str, Any] | None = None, now: datetime) -> list[Event]:
        """``save_plan`` within the caller's transaction (fence checked by the caller):
        returns the ledger event to record, none when this exact version and verdict are
        stored already."""
        key = {"d": plan.decision_id, "v": plan.version}
        exists = conn.execute(_PLAN_EXISTS, key).first()
        if exists is not None:
            if exists.hash == plan.hash and exists.verdict == verdict:
                return []
            if exists.verdict != "drafted":
                raise ConflictError(f"plan {plan.decision_id} v{plan.version} was already "
                                    f"{exists.verdict}")
            record = record or exists.meta
            conn.execute(t.plans.delete().where(_PLAN_KEY), key)
            conn.execute(t.plan_steps.delete().where(
                (t.plan_steps.c.decision_id == plan.decision_id)
                & (t.plan_steps.c.plan_version == plan.version)))
        conn.execute(_INSERT_PLAN, {
            "decision_id": plan.decision_id, "version": plan.version, "hash": plan.hash,
            "planner": plan.planner, "playbook": plan.playbook,
            "body": plan.model_dump(mode="json"), "verdict": verdict,
            "problems": list(problems), "meta": record, "created_at": now})
        conn.execute(_INSERT_STEPS, [
            {"decision_id": plan.decision_id, "plan_version": plan.version, "step_id": s.id,
             "function": s.function, "tool": s.tool, "arguments": None,
             "arguments_hash": s.arguments_hash, "depends_on": list(s.depends_on),
             "risk": s.risk.value, "status": "proposed"} for s in plan.steps])
        conn.execute(_SET_PLAN, {"d": plan.decision_id, "v": plan.version, "h": plan.hash,
                                 "at": now})
        if supersede_previous:
            conn.execute(update(t.approvals).where(
                t.approvals.c.decision_id == plan.decision_id,
                t.approvals.c.plan_version < plan.version,
                t.approvals.c.status.in_([ApprovalStatus.PENDING.value]))
                .values(status=ApprovalStatus.SUPERSEDED.value))
        return [Event(actor=actor, event=f"plan.{verdict}", decision_id=plan.decision_id,
                      plan_hash=plan.hash,
                      body={"version": plan.version, "planner": plan.planner,
                            "playbook": plan.playbook,
                            "steps": [f"{s.function}:{s.id}:{s.tool}" for s in plan.steps],
                            "problems": list(problems)})]

    def plan_row(self, decision_id: str, version: int) -> dict[str, Any] | None:
        """The stored plan version with its verdict, problems and planning record."""
        with self.reading() as conn:
            row = conn.execute(select(t.plans).where(t.plans.c.decision_id == decision_id,
                                                     t.plans.c.version == version)).first()
        return dict(row._mapping) if row else None

    def plan(self, decision_id: str, version: int | None = None) -> Plan:
        with self.reading() as conn:
            if version is not None:
                body = conn.scalar(_PLAN_BODY, {"d": decision_id, "v": version})
            else:
                body = conn.scalar(select(t.plans.c.body)
                                   .where(t.plans.c.decision_id == decision_id)
                                   .order_by(t.plans.c.version.desc()).limit(1))
        if body is None:
            raise NotFoundError(f"no plan for decision {decision_id!r}", field="decision_id")
        return Plan.model_validate(body)

    def plan_steps(self, decision_id: str, version: int) -> list[dict[str, Any]]:
        with self.reading() as conn:
            return hydrate_arguments(conn, (dict(r._mapping) for r in conn.execute(
                select(t.plan_steps).where(t.plan_steps.c.decision_id == decision_id,
                                           t.plan_steps.c.plan_version == version))))

    def set_step_status(self, conn: Connection, decision_id: str, version: int, step_id: str,
                        status: str, detail: str | None = None) -> None:
        conn.execute(update(t.plan_steps).where(
            t.plan_steps.c.decision_id == decision_id, t.plan_steps.c.plan_version == version,
            t.plan_steps.c.step_id == step_id).values(status=status, detail=detail))
