"""Conflicts on an entity: routing each plan now reads the other unfinished decisions on
its entity (whatever their kind), so decisions get an index by entity id and status.

Revision ID: 0009_plans
Revises: 0008
Create Date: 2026-12-04
"""

from alembic import op

revision = "0009_plans"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_entity_open", "decisions", ["entity_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_decisions_entity_open", "decisions")
