"""Usage of the function policies' totals (aggregate limits): ``usage`` holds, per
approved call and summed argument, its target, amount and time. And
``approvals.interrupt_id`` goes: the engine matches answers to interrupts by approval id
(each interrupt carries its request), so the store no longer mirrors the checkpoint.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "usage",
        sa.Column("idempotency_key", sa.String(120), primary_key=True),
        sa.Column("measure", sa.String(64), primary_key=True),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(80), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("released_at", _TIME),
    )
    op.create_index("ix_usage_total", "usage", ["tool", "measure", "target", "at"])
    op.create_index("ix_usage_decision", "usage", ["decision_id"])
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.drop_column("interrupt_id")


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch_op:
        batch_op.add_column(sa.Column("interrupt_id", sa.String(64)))
    op.drop_index("ix_usage_decision", "usage")
    op.drop_index("ix_usage_total", "usage")
    op.drop_table("usage")
