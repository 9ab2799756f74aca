"""Tables of the continuous loop's housekeeping (SQLAlchemy Core, shared ``metadata``):
SLA alerts sent per approval (exactly once each), per-source schedule and cursor state.
The ``decisions.checkpoint_pruned_at`` column is added by the same migration
(``0004_operations``) and declared in ``_tables``."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Text

from decisionops.agent.store._tables import Time, metadata

__all__ = ["approval_alerts", "source_state"]

approval_alerts = Table(
    "approval_alerts", metadata,
    Column("approval_id", String(64), ForeignKey("approvals.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # reminder, escalation or expiry
    Column("at", Time, nullable=False),
    Column("detail", Text),
)

source_state = Table(
    "source_state", metadata,
    Column("name", String(100), primary_key=True),
    Column("cursor", Text),  # the highest cursor value read (SQL sources), as text
    Column("last_run_at", Time),
    Column("next_run_at", Time),
    Column("last_error", Text),
)
