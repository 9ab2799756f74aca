"""Executions: the write-ahead record of every tool call (``started`` before the call,
``succeeded``/``failed``/``compensated`` after), keyed by idempotency key, and the
status of the plan steps they carry out.

Every write takes the decision's unit of work (``DecisionTx``): a worker that lost the
lease records nothing, and each batch of calls commits with its ledger entry.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, insert, select, text, update

from decisionops.agent.errors import ConflictError
from decisionops.agent.hashing import digest
from decisionops.agent.models import ExecutionStatus
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import DecisionTx, Repo
from decisionops.agent.store._plans import PlanRepo
from decisionops.agent.store._references import hydrate_arguments
from decisionops.agent.store._rows import ExecutionRow, from_mapping

__all__ = ["CallEnd", "CallStart", "ExecutionRepo", "FinishedCalls", "Share"]


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
    effect_unknown: bool = False
    """A failure the tool could not be asked about: it may have taken effect."""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "step_id": self.step_id, "purpose": self.purpose,
                "status": self.status.value, "receipt": self.receipt, "error": self.error,
                **({"effect_unknown": True} if self.effect_unknown else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallEnd:
        return cls(data["key"], data["step_id"], data["purpose"],
                   ExecutionStatus(data["status"]), data.get("receipt"), data.get("error"),
                   bool(data.get("effect_unknown")))


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


@dataclass(frozen=True)
class Share:
    """What one call uses of the totals on its tool: ``amount`` of argument ``measure``
    for ``target`` (see ``policy.Total``)."""

    key: str
    """The call's idempotency key."""
    tool: str
    measure: str
    target: str
    amount: float


_FINISH_EXECUTION = (update(t.executions)
                     .where(t.executions.c.idempotency_key == bindparam("k"))
                     .values(status=bindparam("st"), receipt=bindparam("rc"),
                             error=bindparam("er"), finished_at=bindparam("at")))
_EXECUTIONS = (select(t.executions).where(t.executions.c.decision_id == bindparam("d"))
               .order_by(t.executions.c.started_at, t.executions.c.idempotency_key))
_KNOWN_CALLS = (select(t.executions.c.idempotency_key, t.executions.c.attempts,
                       t.executions.c.arguments_hash)
                .where(t.executions.c.idempotency_key.in_(bindparam("keys", expanding=True))))
_INSERT_EXECUTIONS = insert(t.executions)
_INSERT_USAGE = insert(t.usage)
_SHARES = (select(t.usage.c.idempotency_key, t.usage.c.measure)
           .where(t.usage.c.idempotency_key.in_(bindparam("keys", expanding=True))))
_HOLD_SHARES = (update(t.usage)
                .where(t.usage.c.idempotency_key.in_(bindparam("keys", expanding=True)),
                       t.usage.c.released_at.is_not(None))
                .values(released_at=None))
_RELEASE_SHARES = (update(t.usage)
                   .where(t.usage.c.idempotency_key.in_(bindparam("keys", expanding=True)),
                          t.usage.c.released_at.is_(None))
                   .values(released_at=bindparam("released")))
_GRANTS = (select(t.ledger.c.body)
           .where(t.ledger.c.decision_id == bindparam("d"), t.ledger.c.plan_hash == bindparam("h"),
                  t.ledger.c.event.like("approval.%"))
           .order_by(t.ledger.c.seq))


def approved_hashes(conn: Connection, decision_id: str, plan_hash: str) -> dict[str, str]:
    """Step id → hash of the arguments approved for plan ``plan_hash``, as the ledger
    records them: every answer that grants approval (an approver's, the policy's, an
    expiry's) writes ``approved_hashes`` in its entry, and nothing else does. Read from
    the ledger, which a change to the approvals table cannot alter unnoticed."""
    out: dict[str, str] = {}
    for body in conn.scalars(_GRANTS, {"d": decision_id, "h": plan_hash}):
        out.update(body.get("approved_hashes") or {})
    return out


def used(conn: Connection, *, tool: str, measure: str, target: str | None,
         since: datetime | None, decision_id: str | None = None,
         exclude_decision: str | None = None, exclude_keys: Sequence[str] = ()) -> float:
    """What calls have used of argument ``measure`` of ``tool``: for ``target`` (None:
    every target), since ``since`` (None: ever), of one decision or all but one; calls
    that released their share (no effect, or compensated) do not count."""
    params = {"tool": tool, "measure": measure, "target": target, "since": since,
              "decision_id": decision_id, "exclude_decision": exclude_decision,
              "exclude_keys": list(exclude_keys) or None}
    given = {k: v for k, v in params.items() if v is not None}
    return float(conn.scalar(_usage_query(frozenset(given)), given) or 0.0)


@cache
def _usage_query(given: frozenset[str]) -> Select[Any]:
    """``used``'s query for one combination of its filters, built once."""
    u = t.usage
    query = select(func.coalesce(func.sum(u.c.amount), 0.0)).where(
        u.c.tool == bindparam("tool"), u.c.measure == bindparam("measure"),
        u.c.released_at.is_(None))
    if "target" in given:
        query = query.where(u.c.target == bindparam("target"))
    if "since" in given:
        query = query.where(u.c.at >= bindparam("since"))
    if "decision_id" in given:
        query = query.where(u.c.decision_id == bindparam("decision_id"))
    if "exclude_decision" in given:
        query = query.where(u.c.decision_id != bindparam("exclude_decision"))
    if "exclude_keys" in given:
        query = query.where(u.c.idempotency_key.not_in(bindparam("exclude_keys",
                                                                 expanding=True)))
    return query


class ExecutionRepo(Repo):
    def list(self, decision_id: str) -> list[ExecutionRow]:
        with self.reading() as conn:
            return [from_mapping(ExecutionRow, r) for r in hydrate_arguments(
                conn, (dict(r._mapping) for r in conn.execute(_EXECUTIONS, {"d": decision_id})))]

    def state(self, decision_id: str, plan_hash: str
              ) -> tuple[list[ExecutionRow], dict[str, str]]:
        """What the executor starts from, in one read: the decision's executions, and
        step id → hash of the approved arguments (``approved_hashes``)."""
        with self.reading() as conn:
            rows = [from_mapping(ExecutionRow, r) for r in hydrate_arguments(
                conn, (dict(r._mapping) for r in conn.execute(_EXECUTIONS, {"d": decision_id})))]
            return rows, approved_hashes(conn, decision_id, plan_hash)

    def approved_hashes(self, decision_id: str, plan_hash: str) -> dict[str, str]:
        with self.reading() as conn:
            return approved_hashes(conn, decision_id, plan_hash)

    @staticmethod
    def start(tx: DecisionTx, *, plan_version: int, plan_hash: str, calls: Sequence[CallStart]
              ) -> dict[str, int]:
        """Write-ahead: record the attempts before the tools are called. Returns the
        attempt number per idempotency key."""
        conn = tx.conn
        attempts: dict[str, int] = {}
        known = {r.idempotency_key: r for r in conn.execute(
            _KNOWN_CALLS, {"keys": [c.key for c in calls]})} if calls else {}
        fresh = []
        for call in calls:
            row = known.get(call.key)
            if row is None:
                attempts[call.key] = 1
                fresh.append({"idempotency_key": call.key, "decision_id": tx.decision_id,
                              "plan_version": plan_version, "step_id": call.step_id,
                              "purpose": call.purpose, "tool": call.tool,
                              "arguments": None if call.from_plan else call.arguments,
                              "arguments_hash": call.arguments_hash,
                              "status": ExecutionStatus.STARTED.value, "attempts": 1,
                              "started_at": tx.now})
                continue
            if row.arguments_hash != call.arguments_hash:
                raise ConflictError(f"execution {call.key} was started with other arguments")
            attempts[call.key] = row.attempts + 1
            conn.execute(update(t.executions).where(t.executions.c.idempotency_key == call.key)
                         .values(attempts=row.attempts + 1, status=ExecutionStatus.STARTED.value))
        if fresh:
            conn.execute(_INSERT_EXECUTIONS, fresh)
        if calls:
            # One entry per batch of calls (a wave): which calls, with which keys and
            # argument hashes, are about to be made.
            tx.record(f"{calls[0].purpose}.started", {"calls": [
                {"step_id": c.step_id, "tool": c.tool, "idempotency_key": c.key,
                 "attempt": attempts[c.key], "arguments_hash": c.arguments_hash}
                for c in calls]}, plan_hash=plan_hash)
        return attempts

    @staticmethod
    def finish(tx: DecisionTx, *, plan_version: int, plan_hash: str, calls: Sequence[CallEnd]
               ) -> None:
        """Record the results of tool calls and their steps' status. A call that failed
        and is known to have made no effect gives back its share of the totals; one whose
        effect is unknown keeps it."""
        if not calls:
            return
        ExecutionRepo.release_shares(tx, [c.key for c in calls if c.status is ExecutionStatus.FAILED
                                          and c.purpose == "execution" and not c.effect_unknown])
        tx.conn.execute(_FINISH_EXECUTION, [
            {"k": c.key, "st": c.status.value, "rc": c.receipt, "er": c.error, "at": tx.now}
            for c in calls])
        PlanRepo.set_step_status(tx, plan_version, {
            c.step_id: (c.status.value if c.purpose == "execution"
                        else ExecutionStatus.COMPENSATED.value, c.error)
            for c in calls if c.purpose == "execution" or c.status == ExecutionStatus.COMPENSATED})
        # One entry per batch: each call's outcome. The receipt itself is in the
        # executions row; the ledger keeps its digest, which proves that row unaltered.
        tx.record(f"{calls[0].purpose}.finished", {"calls": [
            {"step_id": c.step_id, "idempotency_key": c.key, "status": c.status.value,
             **({"receipt_digest": digest(c.receipt)} if c.receipt else {}),
             **({"error": c.error} if c.error else {})} for c in calls]}, plan_hash=plan_hash)

    @staticmethod
    def skip(tx: DecisionTx, *, plan_version: int, plan_hash: str, skipped: dict[str, str]
             ) -> None:
        """Mark steps that will not run, with the reason."""
        PlanRepo.set_step_status(tx, plan_version, {s: ("skipped", r) for s, r in skipped.items()})
        for step_id, reason in sorted(skipped.items()):
            tx.record("execution.skipped", {"step_id": step_id, "reason": reason},
                      plan_hash=plan_hash)

    # ------------------------------------------------------------------ totals

    def used(self, *, tool: str, measure: str, target: str | None, since: datetime | None,
             exclude_decision: str | None = None) -> float:
        with self.reading() as conn:
            return used(conn, tool=tool, measure=measure, target=target, since=since,
                        exclude_decision=exclude_decision)

    @staticmethod
    def lock_totals(tx: DecisionTx, names: Sequence[str]) -> None:
        """Serialize the transactions that check and claim the same totals (PostgreSQL:
        transaction advisory locks, in a fixed order; SQLite has one writer anyway)."""
        if tx.conn.dialect.name != "postgresql":
            return
        for name in sorted(set(names)):
            tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": zlib.crc32(f"decisionops:total:{name}".encode())})

    @staticmethod
    def claim_shares(tx: DecisionTx, shares: Sequence[Share]) -> None:
        """Record what calls about to be made use of their totals (idempotent per key)."""
        if not shares:
            return
        keys = sorted({s.key for s in shares})
        known = {(k, m) for k, m in tx.conn.execute(_SHARES, {"keys": keys})}
        rows = [{"idempotency_key": s.key, "measure": s.measure, "decision_id": tx.decision_id,
                 "tool": s.tool, "target": s.target, "amount": s.amount, "at": tx.now}
                for s in shares if (s.key, s.measure) not in known]
        if rows:
            tx.conn.execute(_INSERT_USAGE, rows)
        if known:
            # A call started again (a retry, a re-run) holds its share again.
            tx.conn.execute(_HOLD_SHARES, {"keys": keys})

    @staticmethod
    def release_shares(tx: DecisionTx, keys: Sequence[str]) -> None:
        """Calls that made no effect, or were undone, stop counting against totals."""
        if keys:
            tx.conn.execute(_RELEASE_SHARES, {"keys": list(keys), "released": tx.now})

    def step_counts(self) -> dict[str, int]:
        """Steps of every decision's current plan version, by status."""
        with self.reading() as conn:
            latest = select(t.decisions.c.id, t.decisions.c.plan_version).subquery()
            rows = conn.execute(select(t.plan_steps.c.status, func.count()).join(
                latest, and_(latest.c.id == t.plan_steps.c.decision_id,
                             latest.c.plan_version == t.plan_steps.c.plan_version))
                .group_by(t.plan_steps.c.status))
            return {s: n for s, n in rows}
