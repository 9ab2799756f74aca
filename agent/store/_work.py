"""Approvals, executions and ledger reads: the half of ``Store`` that the
approval service and the executor use. Mixed into ``Store``; not used on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, update

from agent.errors import ConflictError, NotFoundError
from agent.hashing import digest
from agent.models import (
    ApprovalRequest,
    ApprovalStatus,
    DecisionStatus,
    ExecutionStatus,
    Plan,
    utcnow,
)
from agent.store import _tables as t
from agent.store._archive import archived_entries
from agent.store._part import StorePart
from agent.store._references import compact_request, hydrate_arguments, hydrate_requests
from agent.store.ledger import Event, LedgerEntry, snapshot

__all__ = ["CallEnd", "CallStart", "FinishedCalls"]


@dataclass(frozen=True)
class CallStart:
    """A tool call about to be made (write-ahead record)."""

    key: str
    step_id: str
    purpose: str
    """``execution`` or ``compensation``."""
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    from_plan: bool = False
    """The arguments are the plan step's own (approved as proposed): the execution row
    refers to the plan for them instead of storing a copy."""


@dataclass(frozen=True)
class CallEnd:
    key: str
    step_id: str
    purpose: str
    status: ExecutionStatus
    receipt: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "step_id": self.step_id, "purpose": self.purpose,
                "status": self.status.value, "receipt": self.receipt, "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallEnd:
        return cls(data["key"], data["step_id"], data["purpose"],
                   ExecutionStatus(data["status"]), data.get("receipt"), data.get("error"))


@dataclass(frozen=True)
class FinishedCalls:
    """Results of one plan version's tool calls that are not recorded yet."""

    plan_version: int
    plan_hash: str
    calls: Sequence[CallEnd]

    def to_json(self) -> dict[str, Any]:
        return {"plan_version": self.plan_version, "plan_hash": self.plan_hash,
                "calls": [c.to_json() for c in self.calls]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinishedCalls:
        return cls(data["plan_version"], data["plan_hash"],
                   [CallEnd.from_json(c) for c in data["calls"]])


_FINISH_EXECUTION = (update(t.executions)
                     .where(t.executions.c.idempotency_key == bindparam("k"))
                     .values(status=bindparam("st"), receipt=bindparam("rc"),
                             error=bindparam("er"), finished_at=bindparam("at")))
_SET_STEP_STATUS = (update(t.plan_steps)
                    .where(t.plan_steps.c.decision_id == bindparam("d"),
                           t.plan_steps.c.plan_version == bindparam("v"),
                           t.plan_steps.c.step_id == bindparam("s"))
                    .values(status=bindparam("st"), detail=bindparam("er")))


_APPROVAL_IDS = select(t.approvals.c.id).where(
    t.approvals.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_APPROVALS = insert(t.approvals)
_ROUTE_STATUS = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
                 .values(status=bindparam("st"), updated_at=bindparam("at")))
_EXECUTIONS = (select(t.executions).where(t.executions.c.decision_id == bindparam("d"))
               .order_by(t.executions.c.started_at, t.executions.c.idempotency_key))
_KNOWN_CALLS = (select(t.executions.c.idempotency_key, t.executions.c.attempts,
                       t.executions.c.arguments_hash)
                .where(t.executions.c.idempotency_key.in_(bindparam("keys", expanding=True))))
_INSERT_EXECUTIONS = insert(t.executions)
_APPROVED_EVENTS = [f"approval.{s.value}" for s in (
    ApprovalStatus.APPROVED, ApprovalStatus.EDITED, ApprovalStatus.AUTO_APPROVED)]
_APPROVED_BODIES = (select(t.ledger.c.body)
                    .where(t.ledger.c.decision_id == bindparam("d"),
                           t.ledger.c.plan_hash == bindparam("h"),
                           t.ledger.c.event.in_(_APPROVED_EVENTS))
                    .order_by(t.ledger.c.seq))


class WorkRecords(StorePart):
    # ------------------------------------------------------------------ approvals

    def request_approvals(self, requests: Sequence[tuple[ApprovalRequest, str | None, float]],
                          *, actor: str) -> int:
        """Record pending approval requests (request, interrupt id, SLA hours).

        Idempotent: a request that exists keeps its state; its interrupt id is refreshed
        when it was unknown.
        """
        now = utcnow()
        created = 0
        with self.transaction(durable=True) as conn:
            events = []
            for req, interrupt_id, sla_hours in requests:
                row = conn.execute(select(t.approvals.c.status, t.approvals.c.interrupt_id)
                                   .where(t.approvals.c.id == req.approval_id)).first()
                if row is not None:
                    if row.interrupt_id != interrupt_id and interrupt_id is not None:
                        conn.execute(update(t.approvals).where(t.approvals.c.id == req.approval_id)
                                     .values(interrupt_id=interrupt_id))
                    continue
                created += 1
                conn.execute(insert(t.approvals).values(
                    id=req.approval_id, decision_id=req.decision_id,
                    plan_version=req.plan_version, plan_hash=req.plan_hash,
                    function=req.function, interrupt_id=interrupt_id,
                    status=ApprovalStatus.PENDING.value, reason=req.reason,
                    request=compact_request(req), requested_at=now,
                    deadline=now + timedelta(hours=sla_hours)))
                events.append(Event(actor=actor, event="approval.requested",
                                    decision_id=req.decision_id, plan_hash=req.plan_hash,
                                    body={"approval_id": req.approval_id,
                                          "function": req.function, "reason": req.reason,
                                          "steps": [s.id for s in req.steps]}))
            self.record(conn, events, now)
        return created

    def route(self, plan: Plan, *, auto: Sequence[ApprovalRequest], waiting_on: Sequence[str],
              actor: str, fence: int | None, record: dict[str, Any] | None = None) -> None:
        """Store the accepted plan (``save_plan``), the policy's auto-approvals and the
        decision's new status in one transaction. Idempotent: a stored plan version or an
        approval that exists is left as it is."""
        now = utcnow()
        decision_id, plan_hash = plan.decision_id, plan.hash
        status = DecisionStatus.AWAITING_APPROVAL if waiting_on else DecisionStatus.EXECUTING
        with self.transaction() as conn:
            self.check_fence(conn, decision_id, fence)
            events = self.store_plan(conn, plan, verdict="accepted", actor=actor,
                                     supersede_previous=plan.version > 1, record=record, now=now)
            existing = set(conn.scalars(_APPROVAL_IDS, {"ids": [r.approval_id for r in auto]})
                           ) if auto else set()
            recorded, hashes, rows = [], {}, []
            for req in auto:
                if req.approval_id in existing:
                    continue
                rows.append({
                    "id": req.approval_id, "decision_id": req.decision_id,
                    "plan_version": req.plan_version, "plan_hash": req.plan_hash,
                    "function": req.function, "interrupt_id": None,
                    "status": ApprovalStatus.AUTO_APPROVED.value, "reason": req.reason,
                    "request": compact_request(req), "requested_at": now, "deadline": None,
                    "answered_at": now, "approver": f"policy:{req.function}",
                    # The approved arguments are the request's own (and their hashes are in
                    # the ledger): no second copy.
                    "answer": {"type": "approve", "comment": "policy"},
                    "approved_arguments": None, "applied_at": now})
                recorded.append({"approval_id": req.approval_id, "function": req.function})
                hashes.update({s.id: s.arguments_hash for s in req.steps})
            if rows:
                conn.execute(_INSERT_APPROVALS, rows)
            if recorded:
                # One entry for every function policy approved: the approvals and the hash
                # of each approved argument set (what the executor checks against).
                events.append(Event(actor="policy", event="approval.auto_approved",
                                    decision_id=decision_id, plan_hash=plan_hash,
                                    body={"approvals": recorded, "approved_hashes": hashes}))
            conn.execute(_ROUTE_STATUS, {"d": decision_id, "st": status.value, "at": now})
            events.append(Event(actor=actor, event=f"decision.{status.value}",
                                decision_id=decision_id, plan_hash=plan_hash,
                                body={"waiting_on": list(waiting_on)}))
            self.record(conn, events, now)

    def approval(self, approval_id: str) -> dict[str, Any]:
        with self.reading() as conn:
            row = conn.execute(select(t.approvals).where(t.approvals.c.id == approval_id)).first()
            if row is None:
                raise NotFoundError(f"no approval {approval_id!r}", field="approval_id")
            return hydrate_requests(conn, [dict(row._mapping)])[0]

    def approvals(self, *, decision_id: str | None = None, function: str | None = None,
                  status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        query = select(t.approvals).order_by(t.approvals.c.deadline, t.approvals.c.id).limit(limit)
        if decision_id:
            query = query.where(t.approvals.c.decision_id == decision_id)
        if function:
            query = query.where(t.approvals.c.function == function)
        if status:
            query = query.where(t.approvals.c.status == status)
        with self.reading() as conn:
            return hydrate_requests(conn, (dict(r._mapping) for r in conn.execute(query)))

    def answer_approval(self, approval_id: str, *, plan_hash: str, status: ApprovalStatus,
                        approver: str, answer: dict[str, Any],
                        approved_arguments: dict[str, Any] | None) -> None:
        """Compare-and-set: only a pending request for this exact plan version is answered."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            res = conn.execute(update(t.approvals).where(
                t.approvals.c.id == approval_id,
                t.approvals.c.status == ApprovalStatus.PENDING.value,
                t.approvals.c.plan_hash == plan_hash).values(
                status=status.value, approver=approver, answer=answer, answered_at=now,
                approved_arguments=approved_arguments))
            if res.rowcount == 0:
                row = conn.execute(select(t.approvals.c.status, t.approvals.c.plan_hash,
                                          t.approvals.c.approver)
                                   .where(t.approvals.c.id == approval_id)).first()
                if row is None:
                    raise NotFoundError(f"no approval {approval_id!r}", field="approval_id")
                if row.plan_hash != plan_hash:
                    raise ConflictError(f"approval {approval_id} is for another plan version")
                raise ConflictError(f"approval {approval_id} is already {row.status}"
                                    + (f" (by {row.approver})" if row.approver else ""))
            decision_id = conn.scalar(select(t.approvals.c.decision_id)
                                      .where(t.approvals.c.id == approval_id))
            hashes = {sid: digest(args) for sid, args in (approved_arguments or {}).items()}
            self.record(conn, [Event(actor=approver, event=f"approval.{status.value}",
                                     decision_id=decision_id, plan_hash=plan_hash,
                                     body={"approval_id": approval_id, "answer": answer,
                                           "approved_hashes": hashes})], now)

    def answered_unapplied(self, decision_id: str | None = None) -> list[dict[str, Any]]:
        query = select(t.approvals).where(
            t.approvals.c.applied_at.is_(None),
            t.approvals.c.status.not_in([ApprovalStatus.PENDING.value,
                                         ApprovalStatus.SUPERSEDED.value]))
        if decision_id:
            query = query.where(t.approvals.c.decision_id == decision_id)
        with self.reading() as conn:
            return hydrate_requests(conn, (dict(r._mapping) for r in
                                           conn.execute(query.order_by(t.approvals.c.answered_at))))

    def execution_state(self, decision_id: str, plan_hash: str
                        ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """What the executor starts from, in one read: the decision's execution rows
        (``executions``), and step id → hash of the arguments an approver (or policy)
        approved, read from the ledger, which a change to the approvals table cannot
        alter unnoticed."""
        with self.reading() as conn:
            rows = hydrate_arguments(conn, (dict(r._mapping) for r in
                                            conn.execute(_EXECUTIONS, {"d": decision_id})))
            return rows, _approved_hashes(conn, decision_id, plan_hash)

    def mark_applied(self, approval_ids: Sequence[str]) -> None:
        if not approval_ids:
            return
        with self.transaction() as conn:
            conn.execute(update(t.approvals).where(t.approvals.c.id.in_(list(approval_ids)))
                         .values(applied_at=utcnow()))

    def pending_count(self) -> dict[str, int]:
        with self.reading() as conn:
            return dict(conn.execute(  # type: ignore[arg-type]
                select(t.approvals.c.function, func.count())
                .where(t.approvals.c.status == ApprovalStatus.PENDING.value)
                .group_by(t.approvals.c.function)).all())

    def approval_counts(self) -> dict[tuple[str, str], int]:
        with self.reading() as conn:
            rows = conn.execute(select(t.approvals.c.function, t.approvals.c.status, func.count())
                                .group_by(t.approvals.c.function, t.approvals.c.status))
            return {(f, s): n for f, s, n in rows}

    # ------------------------------------------------------------------ executions

    def executions(self, decision_id: str) -> list[dict[str, Any]]:
        with self.reading() as conn:
            return hydrate_arguments(conn, (dict(r._mapping) for r in
                                            conn.execute(_EXECUTIONS, {"d": decision_id})))

    def start_calls(self, *, decision_id: str, plan_version: int, plan_hash: str,
                    calls: Sequence[CallStart], actor: str, fence: int | None,
                    finished: Sequence[CallEnd] = ()) -> dict[str, int]:
        """Write-ahead: record the attempts before the tools are called, in one
        transaction, together with the results of the calls ``finished`` before them.
        Returns the attempt number per idempotency key."""
        if not calls and not finished:
            return {}
        now = utcnow()
        attempts: dict[str, int] = {}
        with self.transaction() as conn:
            self.check_fence(conn, decision_id, fence)
            events = self._finish(conn, decision_id, plan_version, plan_hash, finished, actor, now)
            known = {r.idempotency_key: r for r in conn.execute(
                _KNOWN_CALLS, {"keys": [c.key for c in calls]})} if calls else {}
            fresh = []
            for call in calls:
                row = known.get(call.key)
                if row is None:
                    attempts[call.key] = 1
                    fresh.append({"idempotency_key": call.key, "decision_id": decision_id,
                                  "plan_version": plan_version, "step_id": call.step_id,
                                  "purpose": call.purpose, "tool": call.tool,
                                  "arguments": None if call.from_plan else call.arguments,
                                  "arguments_hash": call.arguments_hash,
                                  "status": ExecutionStatus.STARTED.value, "attempts": 1,
                                  "started_at": now})
                    continue
                if row.arguments_hash != call.arguments_hash:
                    raise ConflictError(f"execution {call.key} was started with other arguments")
                attempts[call.key] = row.attempts + 1
                conn.execute(update(t.executions)
                             .where(t.executions.c.idempotency_key == call.key)
                             .values(attempts=row.attempts + 1,
                                     status=ExecutionStatus.STARTED.value))
            if fresh:
                conn.execute(_INSERT_EXECUTIONS, fresh)
            if calls:
                # One entry per batch of calls (a wave): which calls, with which keys and
                # argument hashes, are about to be made.
                events.append(Event(actor=actor, event=f"{calls[0].purpose}.started",
                                    decision_id=decision_id, plan_hash=plan_hash,
                                    body={"calls": [{"step_id": c.step_id, "tool": c.tool,
                                                     "idempotency_key": c.key,
                                                     "attempt": attempts[c.key],
                                                     "arguments_hash": c.arguments_hash}
                                                    for c in calls]}))
            self.record(conn, events, now)
        return attempts

    def finish_calls(self, *, decision_id: str, plan_version: int, plan_hash: str,
                     calls: Sequence[CallEnd], actor: str, fence: int | None) -> None:
        """Record the results of tool calls (and their steps' status) in one transaction."""
        if not calls:
            return
        now = utcnow()
        with self.transaction() as conn:
            self.check_fence(conn, decision_id, fence)
            self.record(conn, self._finish(conn, decision_id, plan_version, plan_hash, calls,
                                           actor, now), now)

    @staticmethod
    def _finish(conn: Connection, decision_id: str, plan_version: int, plan_hash: str,
                calls: Sequence[CallEnd], actor: str, now: datetime) -> list[Event]:
        if not calls:
            return []
        conn.execute(_FINISH_EXECUTION, [
            {"k": c.key, "st": c.status.value, "rc": c.receipt, "er": c.error, "at": now}
            for c in calls])
        steps = [{"d": decision_id, "v": plan_version, "s": c.step_id,
                  "st": (c.status.value if c.purpose == "execution"
                         else ExecutionStatus.COMPENSATED.value), "er": c.error}
                 for c in calls
                 if c.purpose == "execution" or c.status == ExecutionStatus.COMPENSATED]
        if steps:
            conn.execute(_SET_STEP_STATUS, steps)
        # One entry per batch: each call's outcome. The receipt itself is in the
        # executions row; the ledger keeps its digest, which proves that row unaltered.
        return [Event(actor=actor, event=f"{calls[0].purpose}.finished",
                      decision_id=decision_id, plan_hash=plan_hash,
                      body={"calls": [{"step_id": c.step_id, "idempotency_key": c.key,
                                       "status": c.status.value,
                                       **({"receipt_digest": digest(c.receipt)}
                                          if c.receipt else {}),
                                       **({"error": c.error} if c.error else {})}
                                      for c in calls]})]

    def skip_steps(self, *, decision_id: str, plan_version: int, plan_hash: str,
                   skipped: dict[str, str], actor: str, fence: int | None) -> None:
        if not skipped:
            return
        now = utcnow()
        with self.transaction() as conn:
            self.check_fence(conn, decision_id, fence)
            for step_id, reason in skipped.items():
                conn.execute(update(t.plan_steps).where(
                    t.plan_steps.c.decision_id == decision_id,
                    t.plan_steps.c.plan_version == plan_version,
                    t.plan_steps.c.step_id == step_id).values(status="skipped", detail=reason))
            self.record(conn, [Event(actor=actor, event="execution.skipped",
                                     decision_id=decision_id, plan_hash=plan_hash,
                                     body={"step_id": s, "reason": r})
                               for s, r in sorted(skipped.items())], now)

    def step_counts(self) -> dict[str, int]:
        with self.reading() as conn:
            latest = (select(t.decisions.c.id, t.decisions.c.plan_version).subquery())
            rows = conn.execute(select(t.plan_steps.c.status, func.count()).join(
                latest, and_(latest.c.id == t.plan_steps.c.decision_id,
                             latest.c.plan_version == t.plan_steps.c.plan_version))
                .group_by(t.plan_steps.c.status))
            return {s: n for s, n in rows}

    # ------------------------------------------------------------------ outcomes & ledger

    def ledger_entries(self, decision_id: str | None = None, limit: int = 1000
                       ) -> list[LedgerEntry]:
        """Oldest first: the archived entries (segments), then the ``ledger`` rows."""
        query = select(t.ledger).order_by(t.ledger.c.seq)
        if decision_id:
            query = query.where(t.ledger.c.decision_id == decision_id)
        with snapshot(self.engine) as conn:
            entries = list(islice(archived_entries(conn, decision_id=decision_id or None), limit))
            if len(entries) < limit:
                entries += [LedgerEntry.model_validate(dict(r._mapping))
                            for r in conn.execute(query.limit(limit - len(entries)))]
        return entries


def _approved_hashes(conn: Connection, decision_id: str, plan_hash: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for body in conn.scalars(_APPROVED_BODIES, {"d": decision_id, "h": plan_hash}):
        out.update(body.get("approved_hashes") or {})
    return out
