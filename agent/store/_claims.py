"""Work claiming for several workers: new decisions claimed with ``FOR UPDATE SKIP
LOCKED`` and a lease in one transaction, and cluster-wide exclusive sections (PostgreSQL
advisory locks) for work that must not run twice at once, such as triage (per-entity
cooldowns). On SQLite there is one worker, so both reduce to the plain operation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, or_, select, text, update

from agent.errors import LeaseHeld, LeaseLost, NotFoundError
from agent.models import DecisionStatus, TriageAction, decision_id_for, utcnow
from agent.store import _tables as t
from agent.store._part import StorePart
from agent.store.ledger import Event

__all__ = ["Claim", "ClaimRecords"]


@dataclass(frozen=True)
class Claim:
    prediction_id: str
    decision_id: str
    fence: int
    prediction: dict[str, Any]
    """The prediction's stored payload, read in the claiming transaction."""
    playbook: str | None


# Statements on the hot path are built once (building one costs more than running it).
_FENCE = select(t.decisions.c.fence).where(t.decisions.c.id == bindparam("decision_id"))


class ClaimRecords(StorePart):
    """Leases and fencing tokens of decisions, and claiming new work."""

    def stalled(self, limit: int = 1000) -> list[str]:
        """Decisions mid-way (planning or executing) whose worker's lease has lapsed."""
        now = utcnow()
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.status.in_([DecisionStatus.PLANNING.value,
                                                 DecisionStatus.EXECUTING.value]),
                       or_(t.decisions.c.lease_until.is_(None), t.decisions.c.lease_until < now))
                .order_by(t.decisions.c.updated_at).limit(limit)))

    def claim(self, decision_id: str, owner: str, lease_seconds: float) -> int:
        """Take the lease on a decision; return the new fencing token."""
        now = utcnow()
        with self.transaction() as conn:
            res = conn.execute(
                update(t.decisions)
                .where(t.decisions.c.id == decision_id,
                       or_(t.decisions.c.lease_until.is_(None),
                           t.decisions.c.lease_until < now,
                           t.decisions.c.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds),
                        fence=t.decisions.c.fence + 1))
            if res.rowcount == 0:
                holder = conn.execute(select(t.decisions.c.lease_owner, t.decisions.c.lease_until)
                                      .where(t.decisions.c.id == decision_id)).first()
                if holder is None:
                    raise NotFoundError(f"no decision {decision_id!r}", field="decision_id")
                raise LeaseHeld(f"decision {decision_id} is being worked on by "
                                    f"{holder.lease_owner} until {holder.lease_until:%H:%M:%S}Z")
            return int(conn.scalar(select(t.decisions.c.fence)
                                   .where(t.decisions.c.id == decision_id)))

    def release(self, decision_id: str, fence: int) -> None:
        with self.transaction() as conn:
            conn.execute(update(t.decisions)
                         .where(t.decisions.c.id == decision_id, t.decisions.c.fence == fence)
                         .values(lease_owner=None, lease_until=None))

    def fence_of(self, decision_id: str) -> int | None:
        """The decision's current fencing token (None if there is no such decision)."""
        with self.reading() as conn:
            return conn.scalar(_FENCE, {"decision_id": decision_id})

    def check_fence(self, conn: Connection, decision_id: str, fence: int | None) -> None:
        if fence is None:
            return
        current = conn.scalar(_FENCE, {"decision_id": decision_id})
        if current != fence:
            raise LeaseLost(f"lost the lease on {decision_id} (fence {fence}, now {current})")

    def claim_new_decisions(self, *, owner: str, lease_seconds: float, limit: int = 50
                            ) -> list[Claim]:
        """Create the decision rows of up to ``limit`` actionable predictions, each leased
        to ``owner``. Concurrent workers skip each other's rows instead of waiting."""
        now = utcnow()
        claims: list[Claim] = []
        with self.transaction() as conn:
            query = (select(t.predictions.c.id, t.predictions.c.kind, t.predictions.c.entity_id,
                            t.predictions.c.playbook, t.predictions.c.expected_value,
                            t.predictions.c.payload)
                     .where(t.predictions.c.triage_action == TriageAction.ACT.value,
                            ~exists().where(t.decisions.c.prediction_id == t.predictions.c.id))
                     .order_by(t.predictions.c.observed_at, t.predictions.c.id)
                     .limit(limit)
                     .with_for_update(skip_locked=True, of=t.predictions))
            rows = conn.execute(query).all()
            if not rows:
                return []
            values, events = [], []
            for row in rows:
                decision_id = decision_id_for(row.id)
                values.append({"id": decision_id, "prediction_id": row.id, "kind": row.kind,
                               "entity_id": row.entity_id, "playbook": row.playbook,
                               "status": DecisionStatus.PLANNING.value, "plan_version": 0,
                               "expected_value": row.expected_value, "created_at": now,
                               "updated_at": now, "fence": 1, "lease_owner": owner,
                               "lease_until": now + timedelta(seconds=lease_seconds)})
                events.append(Event(actor=owner, event="decision.started",
                                    decision_id=decision_id,
                                    body={"prediction_id": row.id, "playbook": row.playbook}))
                claims.append(Claim(row.id, decision_id, 1, row.payload, row.playbook))
            conn.execute(insert(t.decisions), values)
            self.record(conn, events, now)
        return claims

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Yield True when this process may run section ``name`` now (no other worker is
        in it); False when another one is. Never waits."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = zlib.crc32(f"decisionops:{name}".encode())
        with self.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
