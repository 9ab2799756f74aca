"""Decisions: their rows (``DecisionRow``), their status transitions, and their leases.

A decision's status column is the one source of its state; every change to it goes
through ``set_status`` inside the decision's unit of work (``Database.decision_tx``),
together with whatever else the transition writes.

Leases: one worker acts on a decision at a time. A worker takes the lease (``claim``,
which bumps the fencing token every write checks), works one leg of the graph, and
gives the lease back (``release``) when the leg ends waiting on people or finishes
(a terminal status releases it in the same commit). A worker that dies or fails
mid-leg keeps its lease until it lapses; ``stalled`` lists those decisions for the
loop to carry on. New decisions are created already leased (``claim_new``), so no two
workers start the same prediction.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from decisionops.agent.errors import LeaseHeld, NotFoundError
from decisionops.agent.models import (
    ApprovalStatus,
    DecisionStatus,
    Prediction,
    RelatedDecision,
    decision_id_for,
    utcnow,
)
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import DecisionTx, Repo, insert_or_skip
from decisionops.agent.store._holds import UNTIL_RELEASED, ActiveHolds, unheld
from decisionops.agent.store._holds import place as place_hold
from decisionops.agent.store._rows import DecisionRow, from_mapping
from decisionops.agent.store.ledger import Event

__all__ = ["Claim", "DecisionRepo", "OpenDecision", "seen_by"]

_DECISION_ROW = select(t.decisions).where(t.decisions.c.id == bindparam("id"))
_FENCE = select(t.decisions.c.fence).where(t.decisions.c.id == bindparam("id"))
_SET_STATUS = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
               .values(status=bindparam("st"), updated_at=bindparam("at"),
                       error=bindparam("er")))
_FINISH = (update(t.decisions).where(t.decisions.c.id == bindparam("d"))
           .values(status=bindparam("st"), updated_at=bindparam("at"), error=bindparam("er"),
                   finished_at=bindparam("at"), lease_owner=None, lease_until=None,
                   leg_failures=0))
_EXECUTING = (update(t.decisions)
              .where(t.decisions.c.id == bindparam("d"),
                     t.decisions.c.status != DecisionStatus.EXECUTING.value)
              .values(status=DecisionStatus.EXECUTING.value, updated_at=bindparam("at")))
_RENEW = (update(t.decisions)
          .where(t.decisions.c.id == bindparam("d"), t.decisions.c.fence == bindparam("f"),
                 t.decisions.c.lease_owner == bindparam("o"))
          .values(lease_until=bindparam("u")))
_TAKE_LEASE = {"lease_owner": bindparam("o"), "lease_until": bindparam("u"),
               "fence": t.decisions.c.fence + 1}
_CLAIM = (update(t.decisions)
          .where(t.decisions.c.id == bindparam("d"),
                 or_(t.decisions.c.lease_until.is_(None),
                     t.decisions.c.lease_until < bindparam("now"),
                     t.decisions.c.lease_owner == bindparam("o")))
          .values(**_TAKE_LEASE).returning(t.decisions.c.fence))
"""Takes the lease unless another owner's runs; the new fencing token, or no row."""
_TAKE = (update(t.decisions)
         .where(t.decisions.c.id == bindparam("d"), t.decisions.c.fence == bindparam("f"))
         .values(**_TAKE_LEASE).returning(t.decisions.c.fence))
"""Takes a lease found free, unless it changed hands since it was read."""
_RELEASE = (update(t.decisions)
            .where(t.decisions.c.id == bindparam("d"), t.decisions.c.fence == bindparam("f"))
            .values(lease_owner=None, lease_until=None, leg_failures=0))
"""Gives the lease back after a leg that did not fail."""
_LIVE = [s.value for s in DecisionStatus if not s.terminal]
_OPEN_ON_ENTITY = (select(t.decisions.c.id, t.decisions.c.kind, t.decisions.c.status,
                          t.decisions.c.playbook, t.decisions.c.plan_version,
                          t.decisions.c.created_at)
                   .join(t.predictions, t.predictions.c.id == t.decisions.c.prediction_id)
                   .where(t.decisions.c.entity_id == bindparam("entity_id"),
                          t.predictions.c.entity_type == bindparam("entity_type"),
                          t.decisions.c.status.in_(_LIVE))
                   .order_by(t.decisions.c.created_at, t.decisions.c.id))
_STEPS_OF = (select(t.plan_steps.c.decision_id, t.plan_steps.c.plan_version,
                    t.plan_steps.c.step_id, t.plan_steps.c.function, t.plan_steps.c.tool)
             .where(t.plan_steps.c.decision_id.in_(bindparam("ids", expanding=True)))
             .order_by(t.plan_steps.c.decision_id, t.plan_steps.c.step_id))
"""Built once: the conflicts node reads an entity's open decisions for every decision."""


@dataclass(frozen=True)
class Claim:
    """A decision this worker created and leased, with what starting it needs."""

    prediction_id: str
    decision_id: str
    fence: int
    prediction: dict[str, Any]
    """The prediction's stored payload, read in the claiming transaction."""
    playbook: str | None


def dead_here(owner: str | None) -> bool:
    """Whether ``owner`` (``<role>:<host>:<pid>[:…]``, as workers name themselves) is a
    process of this machine that has exited. Unknown forms, other machines and live
    processes (a recycled pid included) count as alive."""
    parts = (owner or "").split(":")
    if len(parts) < 3 or not parts[2].isdigit() or parts[1] != socket.gethostname():
        return False
    pid = int(parts[2])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited child its parent has not reaped yet still answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class OpenDecision:
    """An unfinished decision on an entity, oldest first (``open_on_entity``)."""

    related: RelatedDecision
    created_at: Any


_STARTED = (update(t.predictions).where(t.predictions.c.id == bindparam("prediction"))
            .values(started_at=bindparam("at")))
"""The prediction's decision was created: it leaves the open work's indexes."""
_CLAIM_INSERT = insert_or_skip(t.decisions, t.decisions.c.id)
"""A claim's decision rows, executed with its rows as parameters (one statement compiled
once, sent in batches), not built with the rows as values (compiled again for every
batch size, a few ms of the loop's CPU a claim); a row another worker created first is
skipped and not returned."""


def seen_by(functions: Sequence[str]) -> Any:
    """What a viewer limited to ``functions`` (an approver) sees of the decisions: those
    whose current plan has a step of one of them. The one rule of a decision's
    visibility: the API, the inbox, the LangGraph endpoint, the chat and the prediction
    views (``agent.store.PredictionViewRepo``) all ask it."""
    d, s = t.decisions, t.plan_steps
    return exists().where(s.c.decision_id == d.c.id, s.c.plan_version == d.c.plan_version,
                          s.c.function.in_(list(functions)))


class DecisionRepo(Repo):
    # ------------------------------------------------------------------ reads

    def open_on_entity(self, entity_type: str, entity_id: str, *, exclude: str | None = None
                       ) -> list[OpenDecision]:
        """The unfinished decisions on one entity (type and id of their predictions),
        oldest first, each with the steps of its current plan version."""
        with self.reading() as conn:
            rows = [r for r in conn.execute(_OPEN_ON_ENTITY, {"entity_id": entity_id,
                                                              "entity_type": entity_type})
                    if r.id != exclude]
            steps: dict[str, list[str]] = {}
            if rows:
                for step in conn.execute(_STEPS_OF, {"ids": [r.id for r in rows]}):
                    if any(r.id == step.decision_id and r.plan_version == step.plan_version
                           for r in rows):
                        steps.setdefault(step.decision_id, []).append(
                            f"{step.function}:{step.step_id} {step.tool}")
        return [OpenDecision(RelatedDecision(
            decision_id=r.id, kind=r.kind, status=r.status, playbook=r.playbook,
            steps=tuple(steps.get(r.id, ()))), r.created_at) for r in rows]

    def open_among(self, decision_ids: Sequence[str]) -> list[str]:
        """Those of ``decision_ids`` that are not finished."""
        if not decision_ids:
            return []
        with self.reading() as conn:
            return list(conn.scalars(select(t.decisions.c.id).where(
                t.decisions.c.id.in_(list(decision_ids)), t.decisions.c.status.in_(_LIVE))))

    def get(self, decision_id: str) -> DecisionRow:
        with self.reading() as conn:
            row = conn.execute(_DECISION_ROW, {"id": decision_id}).first()
        if row is None:
            raise NotFoundError(f"no decision {decision_id!r}", field="decision_id")
        return from_mapping(DecisionRow, row._mapping)

    def seen(self, decision_id: str, functions: Sequence[str] | None) -> bool:
        """Whether a viewer limited to ``functions`` sees the decision (``seen_by``;
        None: a viewer who sees every one)."""
        if functions is None:
            return True
        with self.reading() as conn:
            return conn.scalar(select(t.decisions.c.id).where(
                t.decisions.c.id == decision_id, seen_by(functions))) is not None

    def list(self, *, status: str | None = None, kind: str | None = None,
             entity_id: str | None = None, functions: Sequence[str] | None = None,
             limit: int = 100) -> list[DecisionRow]:
        """Most recently updated first. ``functions``: what a viewer limited to them sees
        (``seen_by``; None: every decision), filtered before ``limit`` counts."""
        query = select(t.decisions).order_by(t.decisions.c.updated_at.desc()).limit(limit)
        if functions is not None:
            query = query.where(seen_by(functions))
        if status:
            query = query.where(t.decisions.c.status == status)
        if kind:
            query = query.where(t.decisions.c.kind == kind)
        if entity_id:
            query = query.where(t.decisions.c.entity_id == entity_id)
        with self.reading() as conn:
            return [from_mapping(DecisionRow, r._mapping) for r in conn.execute(query)]

    def ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Decision ids that begin with ``prefix`` (at most ``limit``: enough to tell a
        unique match from an ambiguous one)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (select(t.decisions.c.id).where(t.decisions.c.id.like(escaped + "%", escape="\\"))
                 .order_by(t.decisions.c.id).limit(limit))
        with self.reading() as conn:
            return list(conn.scalars(query))

    def counts(self, *, functions: Sequence[str] | None = None) -> dict[str, int]:
        """Decisions by status; ``functions``: of those a viewer limited to them sees."""
        query = select(t.decisions.c.status, func.count()).group_by(t.decisions.c.status)
        if functions is not None:
            query = query.where(seen_by(functions))
        with self.reading() as conn:
            return dict(conn.execute(query).all())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ transitions

    @staticmethod
    def set_status(tx: DecisionTx, status: DecisionStatus, *, error: str | None = None,
                   plan_hash: str | None = None, body: dict[str, Any] | None = None) -> None:
        """Move the decision to ``status`` (recorded as ``decision.<status>``); a terminal
        status also releases the lease, in the same commit."""
        tx.conn.execute(_FINISH if status.terminal else _SET_STATUS,
                        {"d": tx.decision_id, "st": status.value, "at": tx.now, "er": error})
        tx.record(f"decision.{status.value}", {**(body or {}),
                                               **({"error": error} if error else {})},
                  plan_hash=plan_hash)

    @staticmethod
    def mark_executing(tx: DecisionTx, *, plan_hash: str | None = None) -> None:
        """The decision's steps start running (recorded once, however many legs run)."""
        changed = tx.conn.execute(_EXECUTING, {"d": tx.decision_id, "at": tx.now}).rowcount
        if changed:
            tx.record("decision.executing", {}, plan_hash=plan_hash)

    # ------------------------------------------------------------------ leases

    def claim(self, decision_id: str, owner: str, lease_seconds: float) -> int:
        """Take the lease on a decision; return the new fencing token. Refused
        (``LeaseHeld``) while another owner's lease runs, unless that owner is a process of
        this machine that no longer exists (it crashed: its lease need not lapse first)."""
        now = utcnow()
        lease = {"d": decision_id, "o": owner, "u": now + timedelta(seconds=lease_seconds)}
        with self.transaction() as conn:
            fence = conn.scalar(_CLAIM, {**lease, "now": now})
            if fence is None:
                holder = conn.execute(select(t.decisions.c.lease_owner, t.decisions.c.lease_until,
                                             t.decisions.c.fence)
                                      .where(t.decisions.c.id == decision_id)).first()
                if holder is None:
                    raise NotFoundError(f"no decision {decision_id!r}", field="decision_id")
                free = (holder.lease_until is None or holder.lease_until < now
                        or dead_here(holder.lease_owner))  # released or gone meanwhile
                fence = conn.scalar(_TAKE, {**lease, "f": holder.fence}) if free else None
                if fence is None:
                    until = (f" until {holder.lease_until:%H:%M:%S}Z" if holder.lease_until
                             else "")
                    raise LeaseHeld(f"decision {decision_id} is being worked on by "
                                    f"{holder.lease_owner or 'another worker'}{until}")
            return int(fence)

    def renew(self, leases: dict[str, int], owner: str, lease_seconds: float) -> None:
        """Extend ``owner``'s leases (decision → the fence it took): only those it still
        holds under that fence; a released or taken lease stays as it is."""
        if not leases:
            return
        with self.transaction() as conn:
            conn.execute(_RENEW, [{"d": d, "f": f, "o": owner,
                                   "u": utcnow() + timedelta(seconds=lease_seconds)}
                                  for d, f in leases.items()])

    def release(self, decision_id: str, fence: int) -> None:
        """Give the lease back (the leg ended waiting on people, or paused)."""
        with self.transaction() as conn:
            conn.execute(_RELEASE, {"d": decision_id, "f": fence})

    def note_failure(self, decision_id: str, fence: int, error: str, *, hold_after: int,
                     actor: str) -> int | None:
        """Count the holder's failed leg and say why it failed. Below ``hold_after`` failed
        legs in a row the lease stays, so the decision is carried on once it lapses; at
        ``hold_after`` the decision is held until an operator releases it (a recorded hold
        on the decision, the count back to 0), the lease given back. The hold's id, or
        None."""
        now = utcnow()
        with self.transaction() as conn:
            failures = conn.scalar(
                update(t.decisions)
                .where(t.decisions.c.id == decision_id, t.decisions.c.fence == fence)
                .values(leg_failures=t.decisions.c.leg_failures + 1)
                .returning(t.decisions.c.leg_failures))
            if failures is None:
                return None  # the lease changed hands: the new holder says how it went
            if failures < hold_after:
                conn.execute(update(t.decisions).where(t.decisions.c.id == decision_id)
                             .values(error=f"leg failed, tried again once the lease lapses "
                                           f"({failures} of {hold_after} in a row): {error}"))
                return None
            hold_id, event = place_hold(
                conn, target_type="decision", target=decision_id, until=UNTIL_RELEASED,
                reason=f"{failures} legs in a row failed; the last: {error}"[:2000],
                actor=actor, now=now)
            conn.execute(update(t.decisions).where(t.decisions.c.id == decision_id).values(
                lease_owner=None, lease_until=None, leg_failures=0,
                error=f"held (hold #{hold_id}) after {failures} legs in a row failed; "
                      f"once the cause is fixed: decisionops holds release {decision_id}. "
                      f"The last: {error}"))
            self.record(conn, [event], now)
            return hold_id

    def fence_of(self, decision_id: str) -> int | None:
        """The decision's current fencing token (None if there is no such decision)."""
        with self.reading() as conn:
            return conn.scalar(_FENCE, {"id": decision_id})

    def stalled(self, limit: int = 1000, *, skip: ActiveHolds | None = None) -> list[str]:
        """Unfinished decisions whose worker stopped mid-leg (crashed, failed or was cut
        off): a lease is held and has lapsed, or its owner was a process of this machine
        that is gone. Oldest first; without those an entity or playbook hold in ``skip``
        keeps where they are."""
        now = utcnow()
        with self.reading() as conn:
            lapsed = list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.status.in_(_LIVE),
                       t.decisions.c.lease_owner.is_not(None), t.decisions.c.lease_until < now,
                       *unheld(skip))
                .order_by(t.decisions.c.updated_at).limit(limit)))
            held = conn.execute(
                select(t.decisions.c.id, t.decisions.c.lease_owner)
                .where(t.decisions.c.status.in_(_LIVE), t.decisions.c.lease_until >= now,
                       *unheld(skip))
                .order_by(t.decisions.c.updated_at).limit(limit)).all()
        return lapsed + [d for d, owner in held if dead_here(owner)][:max(0, limit - len(lapsed))]

    def waiting_on_nothing(self, limit: int = 1000, *, skip: ActiveHolds | None = None
                           ) -> list[str]:
        """Decisions awaiting approval that no worker holds and that have no pending
        request: every answer is in, so nothing else would wake them (the graph is told
        what it still waits for by its checkpoint, not by the request rows). Oldest first."""
        now = utcnow()
        pending = (select(t.approvals.c.id)
                   .where(t.approvals.c.decision_id == t.decisions.c.id,
                          t.approvals.c.status == ApprovalStatus.PENDING.value).exists())
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.status == DecisionStatus.AWAITING_APPROVAL.value,
                       or_(t.decisions.c.lease_owner.is_(None), t.decisions.c.lease_until < now),
                       ~pending, *unheld(skip))
                .order_by(t.decisions.c.updated_at).limit(limit)))

    def unleased(self, statuses: Sequence[DecisionStatus], limit: int = 1000, *,
                 skip: ActiveHolds | None = None) -> list[str]:
        """Unfinished decisions in ``statuses`` that no worker holds, oldest first
        (without those an entity or playbook hold in ``skip`` keeps where they are)."""
        now = utcnow()
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.status.in_([s.value for s in statuses]),
                       or_(t.decisions.c.lease_owner.is_(None), t.decisions.c.lease_until < now),
                       *unheld(skip))
                .order_by(t.decisions.c.updated_at).limit(limit)))

    def create(self, decision_id: str, prediction: Prediction, *, playbook: str | None,
               expected_value: float | None, owner: str, lease_seconds: float) -> int | None:
        """Create one decision row leased to ``owner`` (for hosts that start a decision
        themselves, such as LangGraph Studio); its fencing token, or None when it exists.
        The expected value is the stored prediction's when triage gave it one (as a
        claim takes it; the one its verdict's entry records), else ``expected_value``."""
        now = utcnow()
        with self.transaction() as conn:
            stored = conn.scalar(select(t.predictions.c.expected_value)
                                 .where(t.predictions.c.id == prediction.id))
            expected_value = stored if stored is not None else expected_value
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            created = conn.scalar(dialect.insert(t.decisions).values(
                id=decision_id, prediction_id=prediction.id, kind=prediction.kind,
                entity_id=prediction.entity_id, playbook=playbook,
                status=DecisionStatus.PLANNING.value, plan_version=0,
                expected_value=expected_value, created_at=now, updated_at=now, fence=1,
                lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
                .on_conflict_do_nothing().returning(t.decisions.c.id))
            if created is None:
                return None
            conn.execute(_STARTED, {"prediction": prediction.id, "at": now})
            self.record(conn, [Event(actor=owner, event="decision.started",
                                     decision_id=decision_id,
                                     body={"prediction_id": prediction.id,
                                           "playbook": playbook})], now)
        return 1

    def claim_new(self, *, owner: str, lease_seconds: float, limit: int = 50) -> list[Claim]:
        """Create the decision rows of up to ``limit`` actionable predictions, each leased
        to ``owner``. Concurrent workers skip each other's rows instead of waiting, and a
        prediction another worker started meanwhile (a READ COMMITTED snapshot can still
        show it unstarted) is skipped, not an error."""
        now = utcnow()
        with self.transaction() as conn:
            query = (select(t.predictions.c.id, t.predictions.c.kind, t.predictions.c.entity_id,
                            t.predictions.c.playbook, t.predictions.c.expected_value,
                            t.predictions.c.payload, t.predictions.c.value_at_stake_supplied)
                     .where(t.UNSTARTED_ACT,
                            ~exists().where(t.decisions.c.prediction_id == t.predictions.c.id))
                     .order_by(t.predictions.c.observed_at, t.predictions.c.id)
                     .limit(limit)
                     .with_for_update(skip_locked=True, of=t.predictions))
            rows = {decision_id_for(r.id): r for r in conn.execute(query)}
            if rows:
                # Under READ COMMITTED the query's snapshot can predate a decision another
                # worker committed for one of these predictions (its lock was already
                # released when this one took it). This statement's snapshot sees it: skip
                # those instead of inserting behind that worker's next transaction.
                started = set(conn.scalars(select(t.decisions.c.id).where(
                    t.decisions.c.id.in_(list(rows)))))
                rows = {d: r for d, r in rows.items() if d not in started}
            if not rows:
                return []
            values = [{"id": decision_id, "prediction_id": r.id, "kind": r.kind,
                       "entity_id": r.entity_id, "playbook": r.playbook,
                       "status": DecisionStatus.PLANNING.value, "plan_version": 0,
                       "expected_value": r.expected_value, "created_at": now,
                       "updated_at": now, "fence": 1, "lease_owner": owner,
                       "lease_until": now + timedelta(seconds=lease_seconds)}
                      for decision_id, r in rows.items()]
            created = set(conn.scalars(_CLAIM_INSERT[conn.dialect.name], values))
            conn.execute(_STARTED, [{"prediction": r.id, "at": now}
                                    for decision_id, r in rows.items() if decision_id in created])
            claims = [Claim(r.id, decision_id, 1, _with_supplied(r.payload,
                                                                 r.value_at_stake_supplied),
                            r.playbook)
                      for decision_id, r in rows.items() if decision_id in created]
            self.record(conn, [Event(actor=owner, event="decision.started",
                                     decision_id=c.decision_id,
                                     body={"prediction_id": c.prediction_id,
                                           "playbook": c.playbook}) for c in claims], now)
        return claims


def _with_supplied(payload: dict[str, Any], value: float | None) -> dict[str, Any]:
    """The prediction a decision starts from: as received, with the value at stake a
    person supplied (or triage defaulted) where it arrived without one."""
    if value is None or payload.get("value_at_stake") is not None:
        return payload
    return {**payload, "value_at_stake": value}
