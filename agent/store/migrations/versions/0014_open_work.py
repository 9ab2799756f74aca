"""Questions about open work cost the open work, not the history. Asked on every tick:
which decisions have answers to apply, and which actionable predictions have no decision
yet (a worker's claim; also the queue depth gauge and the archive's live floor). Both
scanned every row ever stored.

- ``approvals``: a partial index of the answers not yet applied (applied ones, the great
  majority, leave it).
- ``decisions``: a partial index of those whose checkpoints retention has not pruned.
- ``predictions.started_at``: when the prediction's decision was created (filled in here
  from the decisions that exist), and partial indexes of the actionable and needs-a-human
  predictions not started yet.

Revision ID: 0014_open_work
Revises: 0013_autonomy
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_open_work"
down_revision = "0013_autonomy"
branch_labels = None
depends_on = None

_UNAPPLIED = sa.text("applied_at IS NULL")
_UNPRUNED = sa.text("checkpoint_pruned_at IS NULL")
_UNSTARTED_ACT = sa.text("started_at IS NULL AND triage_action = 'act'")
_UNSTARTED_HUMAN = sa.text("started_at IS NULL AND triage_action = 'needs_human'")


def upgrade() -> None:
    op.create_index("ix_approvals_unapplied", "approvals", ["decision_id", "answered_at"],
                    sqlite_where=_UNAPPLIED, postgresql_where=_UNAPPLIED)
    op.create_index("ix_decisions_unpruned", "decisions", ["finished_at"],
                    sqlite_where=_UNPRUNED, postgresql_where=_UNPRUNED)
    # Not batch mode: SQLite adds a column in place (see 0008).
    op.add_column("predictions", sa.Column("started_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE predictions SET started_at = (SELECT min(d.created_at) FROM decisions d "
               "WHERE d.prediction_id = predictions.id) "
               "WHERE EXISTS (SELECT 1 FROM decisions d WHERE d.prediction_id = predictions.id)")
    op.create_index("ix_predictions_unstarted", "predictions", ["observed_at", "id"],
                    sqlite_where=_UNSTARTED_ACT, postgresql_where=_UNSTARTED_ACT)
    op.create_index("ix_predictions_unstarted_human", "predictions", ["ingested_at"],
                    sqlite_where=_UNSTARTED_HUMAN, postgresql_where=_UNSTARTED_HUMAN)


def downgrade() -> None:
    op.drop_index("ix_predictions_unstarted_human", "predictions")
    op.drop_index("ix_predictions_unstarted", "predictions")
    op.drop_column("predictions", "started_at")
    op.drop_index("ix_decisions_unpruned", "decisions")
    op.drop_index("ix_approvals_unapplied", "approvals")
