"""Housekeeping records: SLA alerts (each sent once per approval), checkpoint retention,
and source schedule/cursor state. Mixed into ``Store``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from agent.models import ApprovalStatus, DecisionStatus, utcnow
from agent.store import _tables as t
from agent.store._ops_tables import approval_alerts, source_state
from agent.store._part import StorePart
from agent.store._references import hydrate_requests
from agent.store.ledger import Event

__all__ = ["OpsRecords"]

_TERMINAL = [s.value for s in DecisionStatus if s.terminal]


class OpsRecords(StorePart):
    # ------------------------------------------------------------------ SLA

    def pending_with_alerts(self, limit: int = 5000) -> list[dict[str, Any]]:
        """Pending approvals with the SLA alerts already sent for each (``alerts``)."""
        with self.reading() as conn:
            rows = hydrate_requests(conn, (dict(r._mapping) for r in conn.execute(
                select(t.approvals.c.id, t.approvals.c.decision_id, t.approvals.c.function,
                       t.approvals.c.plan_version, t.approvals.c.plan_hash,
                       t.approvals.c.reason, t.approvals.c.requested_at,
                       t.approvals.c.deadline, t.approvals.c.request)
                .where(t.approvals.c.status == ApprovalStatus.PENDING.value)
                .order_by(t.approvals.c.deadline).limit(limit))))
            sent: dict[str, set[str]] = {}
            ids = [r["id"] for r in rows]
            for i in range(0, len(ids), 500):
                for approval_id, kind in conn.execute(
                        select(approval_alerts.c.approval_id, approval_alerts.c.kind)
                        .where(approval_alerts.c.approval_id.in_(ids[i:i + 500]))):
                    sent.setdefault(approval_id, set()).add(kind)
        for row in rows:
            row["alerts"] = sent.get(row["id"], set())
        return rows

    def claim_alert(self, approval_id: str, kind: str, *, detail: str, actor: str,
                    decision_id: str, plan_hash: str) -> bool:
        """Record that ``kind`` is being sent for the approval; False if it already was
        (by this or another worker): each alert goes out once."""
        now = utcnow()
        try:
            with self.transaction() as conn:
                conn.execute(insert(approval_alerts).values(approval_id=approval_id, kind=kind,
                                                            at=now, detail=detail))
                self.record(conn, [Event(actor=actor, event=f"approval.{kind}",
                                         decision_id=decision_id, plan_hash=plan_hash,
                                         body={"approval_id": approval_id, "detail": detail})],
                            now)
        except IntegrityError:
            return False
        return True

    # ------------------------------------------------------------------ retention

    def prunable(self, finished_before: datetime, limit: int = 500) -> list[str]:
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.status.in_(_TERMINAL),
                       t.decisions.c.finished_at < finished_before,
                       t.decisions.c.checkpoint_pruned_at.is_(None))
                .order_by(t.decisions.c.finished_at).limit(limit)))

    def mark_pruned(self, decision_ids: Sequence[str]) -> None:
        if not decision_ids:
            return
        with self.transaction() as conn:
            conn.execute(update(t.decisions).where(t.decisions.c.id.in_(list(decision_ids)))
                         .values(checkpoint_pruned_at=utcnow()))

    # ------------------------------------------------------------------ sources

    def source_state(self, name: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(source_state).where(source_state.c.name == name)).first()
        if row is None:
            return None
        return dict(row._mapping)

    def save_source_state(self, name: str, **values: Any) -> None:
        with self.transaction() as conn:
            found = conn.execute(update(source_state).where(source_state.c.name == name)
                                 .values(**values))
            if found.rowcount == 0:
                conn.execute(insert(source_state).values(name=name, **values))
