"""The model's replies, journaled until the plan version they were drafting is stored.

A draft is stored once the conversation with the model ends; a worker killed after the
model answered (or stopped between two calls of a conversation) used to ask the model the
same questions again when the decision was carried on, and pay for them twice.
``llm_replies`` keeps each successful reply under the hash of the request it answered
(and which time in the draft it was asked: a reply cut off at the token limit is dropped
and the same request sent again), for its decision and plan version; with what it cost; the
planner replays them on the re-run (a draft's record still says what its plan cost) and
asks only what it has not asked yet. ``PlanRepo.save`` drops a version's replies when it stores it.

Revision ID: 0016_llm_replies
Revises: 0015_llm_spend
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_llm_replies"
down_revision = "0015_llm_spend"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "llm_replies",
        sa.Column("decision_id", sa.String(64), primary_key=True),
        sa.Column("plan_version", sa.Integer(), primary_key=True),
        sa.Column("request_hash", sa.String(64), primary_key=True),
        sa.Column("occurrence", sa.Integer(), primary_key=True),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("llm_replies")
