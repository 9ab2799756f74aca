"""The approver notification outbox (``notifications``): one row per message to send on
one channel (``slack`` or ``email``), written in the transaction of the event that causes
it (an approval requested, reminded, escalated or expired), so a message exists exactly
when its event committed. Delivery (``agent.notifications``) claims due rows with a short
lease, sends, and marks each ``sent``, ``pending`` again with a later ``next_attempt_at``
(backoff), or ``failed`` after its last attempt.

Persistence only: what a message says and whom it goes to is ``agent.notifications``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    case,
    insert,
    literal,
    or_,
    select,
    update,
)

from decisionops.agent.models import utcnow
from decisionops.agent.store._db import Repo
from decisionops.agent.store._tables import Time, approvals, metadata

__all__ = ["NotificationRepo", "NotificationRow", "notifications"]

notifications = Table(
    "notifications", metadata,
    # Stable message id from (approval, event, channel, recipient): the key a receiver
    # de-duplicates on (Slack ``client_msg_id``, e-mail ``Message-ID``).
    Column("id", String(64), primary_key=True),
    Column("decision_id", String(64), nullable=False),
    Column("approval_id", String(64), nullable=False),
    Column("event", String(16), nullable=False),  # requested, reminder, escalation, expired
    Column("channel", String(8), nullable=False),  # slack, email
    Column("recipient", String(320), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(8), nullable=False),  # pending, sent, failed, skipped
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Time, nullable=False),
    Column("lease_until", Time),
    Column("last_error", Text),
    Column("created_at", Time, nullable=False),
    Column("sent_at", Time),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_decision", "decision_id"),
)


@dataclass(frozen=True)
class NotificationRow:
    id: str
    decision_id: str
    approval_id: str
    event: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "approval_id": self.approval_id, "event": self.event,
                "channel": self.channel, "recipient": self.recipient, "status": self.status,
                "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at.isoformat(),
                "last_error": self.last_error, "created_at": self.created_at.isoformat(),
                "sent_at": self.sent_at.isoformat() if self.sent_at else None}


def _row(r: Any) -> NotificationRow:
    m = r._mapping
    return NotificationRow(**{k: m[k] for k in NotificationRow.__dataclass_fields__})


ASKING = ("requested", "reminder", "escalation")
"""Messages that ask an approver to answer: worth sending only while the request waits."""


class NotificationRepo(Repo):
    @staticmethod
    def enqueue(conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> int:
        """Add messages within ``conn``'s transaction; a message whose id exists is kept
        as it is (the same event recorded twice sends once)."""
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        existing = set(conn.scalars(select(notifications.c.id)
                                    .where(notifications.c.id.in_(ids))))
        fresh = [{**r, "status": "pending", "attempts": 0, "next_attempt_at": now,
                  "created_at": now} for r in rows if r["id"] not in existing]
        if fresh:
            conn.execute(insert(notifications), fresh)
        return len(fresh)

    def claim_due(self, *, limit: int, lease: timedelta, now: datetime | None = None,
                  channel: str | None = None) -> list[NotificationRow]:
        """Pending messages due now (of ``channel``, or any), each leased to the caller
        (compare-and-set, so two senders never send the same attempt). A message asking
        for an answer (a request, a reminder, an escalation) whose request is no longer
        pending when its turn comes (behind a slow or failing channel) is ``skipped``,
        saying why, never sent late."""
        now = now or utcnow()
        answered = (select(approvals.c.status).where(
            approvals.c.id == notifications.c.approval_id).scalar_subquery())
        stale = (update(notifications).where(
            notifications.c.status == "pending", notifications.c.event.in_(ASKING),
            answered != "pending")
            .values(status="skipped", lease_until=None, last_error=case(
                # a sender took it and did not finish (stopped mid-send): it may have
                # gone out (trial 26: a delivered message said "not sent")
                (notifications.c.lease_until.is_not(None),
                 literal("not sent again: the request was ") + answered
                 + literal("; an earlier attempt may have delivered it")),
                else_=literal("not sent: the request was ") + answered
                + literal(" before it went out"))))
        due = (select(notifications).where(
            notifications.c.status == "pending", notifications.c.next_attempt_at <= now,
            or_(notifications.c.lease_until.is_(None), notifications.c.lease_until < now))
            .order_by(notifications.c.next_attempt_at).limit(limit))
        if channel is not None:
            due = due.where(notifications.c.channel == channel)
        claimed = []
        with self.transaction() as conn:
            conn.execute(stale)
            for r in conn.execute(due).all():
                got = conn.execute(update(notifications).where(
                    notifications.c.id == r.id, notifications.c.status == "pending",
                    or_(notifications.c.lease_until.is_(None),
                        notifications.c.lease_until < now))
                    .values(lease_until=now + lease))
                if got.rowcount == 1:
                    claimed.append(_row(r))
        return claimed

    def mark_sent(self, message_id: str, *, attempts: int, now: datetime | None = None) -> None:
        self._finish(message_id, status="sent", attempts=attempts, sent_at=now or utcnow(),
                     last_error=None)

    def mark_retry(self, message_id: str, *, attempts: int, error: str, at: datetime) -> None:
        self._finish(message_id, status="pending", attempts=attempts, next_attempt_at=at,
                     last_error=error)

    def mark_failed(self, message_id: str, *, attempts: int, error: str) -> None:
        self._finish(message_id, status="failed", attempts=attempts, last_error=error)

    def _finish(self, message_id: str, **values: Any) -> None:
        with self.transaction() as conn:
            conn.execute(update(notifications).where(notifications.c.id == message_id)
                         .values(lease_until=None, **values))

    def list(self, *, status: str | None = None, decision_id: str | None = None,
             limit: int = 100) -> list[NotificationRow]:
        """Messages, newest first, optionally of one status and one decision."""
        query = select(notifications).order_by(notifications.c.created_at.desc(),
                                               notifications.c.id).limit(limit)
        if status is not None:
            query = query.where(notifications.c.status == status)
        if decision_id is not None:
            query = query.where(notifications.c.decision_id == decision_id)
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(query)]

    def get(self, message_id: str) -> NotificationRow | None:
        with self.reading() as conn:
            row = conn.execute(select(notifications)
                               .where(notifications.c.id == message_id)).first()
        return _row(row) if row is not None else None

    def requeue_failed(self, message_ids: Sequence[str] | None = None, *,
                       now: datetime | None = None) -> list[str]:
        """Put ``failed`` messages (these, or every failed one) back in the queue, due now
        with their attempts counted afresh; the last error stays until the next attempt.
        Only failed messages move (compare-and-set): a sent one is never sent again."""
        now = now or utcnow()
        where = notifications.c.status == "failed"
        if message_ids is not None:
            where = where & notifications.c.id.in_(list(message_ids))
        with self.transaction() as conn:
            ids = list(conn.scalars(select(notifications.c.id).where(where)))
            if ids:
                conn.execute(update(notifications).where(
                    notifications.c.id.in_(ids), notifications.c.status == "failed")
                    .values(status="pending", attempts=0, next_attempt_at=now,
                            lease_until=None))
        return ids

    def for_decision(self, decision_id: str) -> list[NotificationRow]:
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(
                select(notifications).where(notifications.c.decision_id == decision_id)
                .order_by(notifications.c.created_at, notifications.c.id))]
