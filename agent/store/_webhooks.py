"""Webhook deliveries (``Store.webhooks``): each delivery id processed once; a replay
is answered from the stored first response."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from decisionops.agent.models import utcnow
from decisionops.agent.store import _service_tables as s
from decisionops.agent.store._db import Repo


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


__all__ = ["WebhookRepo"]


class WebhookRepo(Repo):
    def claim(self, delivery_id: str, *, body_sha256: str) -> dict[str, Any] | None:
        """Record a webhook delivery as received. Returns None when it is new (the caller
        processes it), else the stored delivery (a replay)."""
        now = utcnow()
        try:
            with self.transaction(durable=True) as conn:
                row = conn.execute(select(s.webhook_deliveries).where(
                    s.webhook_deliveries.c.delivery_id == delivery_id)).first()
                if row is not None:
                    return _row(row)
                conn.execute(insert(s.webhook_deliveries).values(
                    delivery_id=delivery_id, body_sha256=body_sha256, received_at=now))
        except IntegrityError:
            # A concurrent delivery with the same id won the insert.
            return self.get(delivery_id)
        return None

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(s.webhook_deliveries).where(
                s.webhook_deliveries.c.delivery_id == delivery_id)).first()
        return _row(row) if row else None

    def forget(self, delivery_id: str) -> None:
        """Drop an unfinished claim (processing failed), so a retry is processed."""
        with self.transaction() as conn:
            conn.execute(s.webhook_deliveries.delete().where(
                s.webhook_deliveries.c.delivery_id == delivery_id,
                s.webhook_deliveries.c.status_code.is_(None)))

    def finish(self, delivery_id: str, *, status_code: int,
                        response: dict[str, Any]) -> None:
        with self.transaction(durable=True) as conn:
            conn.execute(update(s.webhook_deliveries)
                         .where(s.webhook_deliveries.c.delivery_id == delivery_id)
                         .values(status_code=status_code, response=response))

