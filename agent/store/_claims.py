"""Work claiming for several workers: new decisions claimed with ``FOR UPDATE SKIP
LOCKED`` and a lease in one transaction, and cluster-wide exclusive sections (PostgreSQL
advisory locks) for work that must not run twice at once, such as triage (per-entity
cooldowns). On SQLite there is one worker, so both reduce to the plain operation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, exists, insert, select, text

from agent.models import DecisionStatus, TriageAction, decision_id_for, utcnow
from agent.store import _tables as t
from agent.store.ledger import Event, LedgerEntry

__all__ = ["Claim", "ClaimRecords"]


@dataclass(frozen=True)
class Claim:
    prediction_id: str
    decision_id: str
    fence: int


class ClaimRecords:
    engine: Engine

    # Provided by Store.
    def transaction(self, *, durable: bool = False
                    ) -> AbstractContextManager[Connection]: ...  # pragma: no cover
    def record(self, conn: Connection, events: Any, at: datetime | None = None
               ) -> list[LedgerEntry]: ...  # pragma: no cover

    def claim_new_decisions(self, *, owner: str, lease_seconds: float, limit: int = 50
                            ) -> list[Claim]:
        """Create the decision rows of up to ``limit`` actionable predictions, each leased
        to ``owner``. Concurrent workers skip each other's rows instead of waiting."""
        now = utcnow()
        claims: list[Claim] = []
        with self.transaction() as conn:
            query = (select(t.predictions.c.id, t.predictions.c.kind, t.predictions.c.entity_id,
                            t.predictions.c.playbook, t.predictions.c.expected_value)
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
                claims.append(Claim(row.id, decision_id, 1))
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
