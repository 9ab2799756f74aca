"""Earned autonomy: ``autonomy_answers`` (each answered request's step classes, written
with the answer) and ``autonomy_classes`` (each class's state and its evidence).

Revision ID: 0013_autonomy
Revises: 0012_outbox
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_autonomy"
down_revision = "0012_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autonomy_answers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("class_key", sa.String(300), nullable=False),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("approval_id", sa.String(64), nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_autonomy_answers_class", "autonomy_answers", ["class_key", "at"])
    op.create_index("ux_autonomy_answers_once", "autonomy_answers",
                    ["approval_id", "class_key", "status"], unique=True)
    op.create_table(
        "autonomy_classes",
        sa.Column("class_key", sa.String(300), primary_key=True),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("autonomy_classes")
    op.drop_index("ux_autonomy_answers_once", "autonomy_answers")
    op.drop_index("ix_autonomy_answers_class", "autonomy_answers")
    op.drop_table("autonomy_answers")
