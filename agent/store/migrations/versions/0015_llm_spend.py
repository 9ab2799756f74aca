"""The daily spend cap reads the day's running total, not every call of the day.

Before every model call, a planner checked the cap with the sum of the cost of every LLM
call recorded that day: a read that grew with the day's work (28 ms at 100,000 calls on
SQLite, before each call of each draft). ``llm_spend`` keeps each UTC day's total, added
to in the transaction that records a call; here it starts from the calls already stored.

Revision ID: 0015_llm_spend
Revises: 0014_open_work
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_llm_spend"
down_revision = "0014_open_work"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_spend",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
    )
    # SQLite keeps timestamps as UTC text; PostgreSQL's are converted to UTC here.
    day = ("substr(at, 1, 10)" if op.get_bind().dialect.name == "sqlite"
           else "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
    op.execute(f"INSERT INTO llm_spend (day, cost, calls) SELECT {day}, sum(cost), count(*) "
               f"FROM llm_calls GROUP BY {day}")


def downgrade() -> None:
    op.drop_table("llm_spend")
