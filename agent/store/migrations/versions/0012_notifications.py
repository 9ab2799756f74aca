"""Approver notifications: the ``notifications`` outbox (one row per message per channel,
written with the event that causes it, delivered with retries by the loop), and
``users.email``, where approvers are e-mailed.

Revision ID: 0012_outbox
Revises: 0011_hand
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_outbox"
down_revision = "0011_hand"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("approval_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_decision", "notifications", ["decision_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(320)))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
    op.drop_table("notifications")
