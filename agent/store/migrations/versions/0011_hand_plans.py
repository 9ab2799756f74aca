"""Plans written by hand: ``hand_plans`` keeps the plan a person wrote for a prediction
waiting in the needs-a-human queue (who, when, its hash, the plan), one per prediction.
The decision the prediction starts takes its first plan version from it.

Revision ID: 0011_hand
Revises: 0010_triage
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_hand"
down_revision = "0010_triage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hand_plans",
        sa.Column("prediction_id", sa.String(200), sa.ForeignKey("predictions.id"),
                  primary_key=True),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hand_plans")
