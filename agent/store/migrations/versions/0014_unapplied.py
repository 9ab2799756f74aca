"""The answers lane's index: which decisions have answers to apply is asked on every tick;
a partial index of the approvals not yet applied (applied ones, the great majority, leave
it) makes that cost the answers waiting instead of a scan of every approval ever made.

Revision ID: 0014_unapplied
Revises: 0013_autonomy
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_unapplied"
down_revision = "0013_autonomy"
branch_labels = None
depends_on = None

_UNAPPLIED = sa.text("applied_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_approvals_unapplied", "approvals", ["decision_id", "answered_at"],
                    sqlite_where=_UNAPPLIED, postgresql_where=_UNAPPLIED)


def downgrade() -> None:
    op.drop_index("ix_approvals_unapplied", "approvals")
