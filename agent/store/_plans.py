"""Plan versions and their steps.

A plan version is immutable once accepted (approvals, executions and the ledger refer
to it by hash), and ``plans.body`` is the one copy of its steps: ``plan_steps`` keeps
each step's status and refers to the body for its arguments (see ``_references``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from decisionops.agent.errors import ConflictError, NotFoundError
from decisionops.agent.models import ApprovalStatus, Plan
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import DecisionTx, Repo
from decisionops.agent.store._references import hydrate_arguments

__all__ = ["PlanRepo", "drop_replies"]

_PLAN_KEY = ((t.plans.c.decision_id == bindparam("d")) & (t.plans.c.version == bindparam("v")))
_PLAN_EXISTS = select(t.plans.c.hash, t.plans.c.verdict, t.plans.c.meta).where(_PLAN_KEY)
_PLAN_BODY = select(t.plans.c.body).where(_PLAN_KEY)
_INSERT_PLAN = insert(t.plans)
_INSERT_STEPS = insert(t.plan_steps)
_SET_VERDICT = (update(t.plans).where(_PLAN_KEY)
                .values(verdict=bindparam("verdict"), problems=bindparam("problems"),
                        meta=bindparam("meta")))
_SET_PLAN = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
             .values(plan_version=bindparam("v"), plan_hash=bindparam("h"),
                     updated_at=bindparam("at")))
_SET_STEP_STATUS = (update(t.plan_steps)
                    .where(t.plan_steps.c.decision_id == bindparam("d"),
                           t.plan_steps.c.plan_version == bindparam("v"),
                           t.plan_steps.c.step_id == bindparam("s"))
                    .values(status=bindparam("st"), detail=bindparam("er")))

_DROP_REPLIES = t.llm_replies.delete().where(
    t.llm_replies.c.decision_id == bindparam("decision_id"),
    t.llm_replies.c.plan_version == bindparam("plan_version"))


def drop_replies(conn: Connection, decision_id: str, plan_version: int) -> None:
    """In ``conn``'s transaction: the version is stored, its journaled replies go."""
    conn.execute(_DROP_REPLIES, {"decision_id": decision_id, "plan_version": plan_version})


class PlanRepo(Repo):
    @staticmethod
    def save(tx: DecisionTx, plan: Plan, *, verdict: str, problems: Sequence[str] = (),
             record: dict[str, Any] | None = None, new: bool = False) -> bool:
        """Store a plan version with the guard's verdict (``drafted`` before the guard,
        ``accepted`` or ``refused`` after) and make it the decision's current one; a later
        version supersedes the pending requests of earlier ones. Idempotent: False when
        this exact version and verdict are stored already. A ``drafted`` version is
        replaced by its guarded form (the guard normalizes arguments). ``new``: the
        caller knows no form of this version is stored (nothing to look for; were one
        there, the insert would fail rather than overwrite it)."""
        conn = tx.conn
        key = {"d": plan.decision_id, "v": plan.version}
        exists = None if new else conn.execute(_PLAN_EXISTS, key).first()
        if exists is not None:
            if exists.hash == plan.hash and exists.verdict == verdict:
                return False
            if exists.verdict != "drafted":
                raise ConflictError(f"plan {plan.decision_id} v{plan.version} was already "
                                    f"{exists.verdict}")
            record = record or exists.meta
            if exists.hash == plan.hash:  # the guard left the draft as it was
                conn.execute(_SET_VERDICT, {**key, "verdict": verdict,
                                            "problems": list(problems), "meta": record})
                _record(tx, plan, verdict, problems)
                return True
            conn.execute(t.plans.delete().where(_PLAN_KEY), key)
            conn.execute(t.plan_steps.delete().where(
                (t.plan_steps.c.decision_id == plan.decision_id)
                & (t.plan_steps.c.plan_version == plan.version)))
        conn.execute(_INSERT_PLAN, {
            "decision_id": plan.decision_id, "version": plan.version, "hash": plan.hash,
            "planner": plan.planner, "playbook": plan.playbook,
            "body": plan.model_dump(mode="json"), "verdict": verdict,
            "problems": list(problems), "meta": record, "created_at": tx.now})
        conn.execute(_INSERT_STEPS, [
            {"decision_id": plan.decision_id, "plan_version": plan.version, "step_id": s.id,
             "function": s.function, "tool": s.tool, "arguments": None,
             "arguments_hash": s.arguments_hash, "depends_on": list(s.depends_on),
             "risk": s.risk.value, "status": "proposed"} for s in plan.steps])
        conn.execute(_SET_PLAN, {"d": plan.decision_id, "v": plan.version, "h": plan.hash,
                                 "at": tx.now})
        if plan.version > 1:
            conn.execute(update(t.approvals).where(
                t.approvals.c.decision_id == plan.decision_id,
                t.approvals.c.plan_version < plan.version,
                t.approvals.c.status == ApprovalStatus.PENDING.value)
                .values(status=ApprovalStatus.SUPERSEDED.value))
        _record(tx, plan, verdict, problems)
        if verdict == "drafted":  # a model's draft, stored: its journaled replies go
            drop_replies(conn, plan.decision_id, plan.version)
        return True

    @staticmethod
    def set_step_status(tx: DecisionTx, version: int, statuses: dict[str, tuple[str, str | None]]
                        ) -> None:
        """step id → (status, detail) for steps of plan ``version``."""
        if statuses:
            tx.conn.execute(_SET_STEP_STATUS, [
                {"d": tx.decision_id, "v": version, "s": step_id, "st": status, "er": detail}
                for step_id, (status, detail) in statuses.items()])

    def get(self, decision_id: str, version: int | None = None) -> Plan:
        """A stored plan version (default: the newest)."""
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

    def find(self, decision_id: str, version: int) -> Plan | None:
        """The stored plan version, or None."""
        with self.reading() as conn:
            body = conn.scalar(_PLAN_BODY, {"d": decision_id, "v": version})
        return Plan.model_validate(body) if body is not None else None

    def row(self, decision_id: str, version: int) -> dict[str, Any] | None:
        """The stored plan version with its verdict, problems and planning record."""
        with self.reading() as conn:
            row = conn.execute(select(t.plans).where(t.plans.c.decision_id == decision_id,
                                                     t.plans.c.version == version)).first()
        return dict(row._mapping) if row else None

    def records(self, decision_id: str) -> list[dict[str, Any]]:
        """Every stored version of a decision's plan with verdict, problems and planning
        record (``meta``), oldest first."""
        with self.reading() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(t.plans).where(t.plans.c.decision_id == decision_id)
                .order_by(t.plans.c.version))]

    def steps(self, decision_id: str, version: int) -> list[dict[str, Any]]:
        """The steps of a plan version with their status (arguments read from the plan)."""
        with self.reading() as conn:
            return hydrate_arguments(conn, (dict(r._mapping) for r in conn.execute(
                select(t.plan_steps).where(t.plan_steps.c.decision_id == decision_id,
                                           t.plan_steps.c.plan_version == version))))


def _record(tx: DecisionTx, plan: Plan, verdict: str, problems: Sequence[str]) -> None:
    tx.record(f"plan.{verdict}", {
        "version": plan.version, "planner": plan.planner, "playbook": plan.playbook,
        "steps": [f"{s.function}:{s.id}:{s.tool}" for s in plan.steps],
        "problems": list(problems)}, plan_hash=plan.hash)
