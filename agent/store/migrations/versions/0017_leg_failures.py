"""Failed legs in a row, per decision.

A leg that fails the same way every time (a bug, a result the store cannot take) was
carried on after every lease, forever. ``decisions.leg_failures`` counts a decision's
legs that failed since its last one that did not; at ``max_leg_failures`` the loop holds
the decision for an operator (a recorded hold on the decision) instead of trying again.

Revision ID: 0017_leg_failures
Revises: 0016_llm_replies
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_leg_failures"
down_revision = "0016_llm_replies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decisions", sa.Column("leg_failures", sa.Integer(), nullable=False,
                                         server_default="0"))


def downgrade() -> None:
    op.drop_column("decisions", "leg_failures")  # SQLite 3.35+ drops a column in place
