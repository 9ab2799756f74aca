"""Bulk intake and set-based triage: ``predictions.ingest_seq`` names the ledger entry of
the batch a prediction was accepted in (its row hash is a leaf of that entry's Merkle
root), with an index to gather a batch back; the index of untriaged rows by ingestion
time becomes partial (triaged rows, the great majority, leave it), so triage walks only
the rows it has left to do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UNTRIAGED = sa.text("triaged_at IS NULL")


def upgrade() -> None:
    # Not batch mode: SQLite adds a column in place, where a table copy would trip over
    # the decisions that reference predictions.
    op.add_column("predictions", sa.Column("ingest_seq", sa.BigInteger()))
    op.drop_index("ix_predictions_untriaged", "predictions")
    op.create_index("ix_predictions_ingest_seq", "predictions", ["ingest_seq"])
    op.create_index("ix_predictions_untriaged", "predictions", ["ingested_at"],
                    sqlite_where=_UNTRIAGED, postgresql_where=_UNTRIAGED)


def downgrade() -> None:
    op.drop_index("ix_predictions_untriaged", "predictions")
    op.drop_index("ix_predictions_ingest_seq", "predictions")
    op.drop_column("predictions", "ingest_seq")
    op.create_index("ix_predictions_untriaged", "predictions", ["triaged_at", "ingested_at"])
