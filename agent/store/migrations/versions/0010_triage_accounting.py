"""Every prediction accounted for: ``predictions.value_at_stake_supplied`` keeps a value at
stake the prediction arrived without — one a person supplied from the needs-a-human
queue, or the kind's configured default triage used — beside the prediction, whose
payload (and row hash) stays as received. Decisions are started with it.

Revision ID: 0010_triage
Revises: 0009_plans
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_triage"
down_revision = "0009_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not batch mode: SQLite adds a column in place (see 0008).
    op.add_column("predictions", sa.Column("value_at_stake_supplied", sa.Float()))
    # What the earlier triage dropped without a person seeing it goes to a person now,
    # as it would be triaged today: a kind no playbook answered, and a missing value at
    # stake where the playbook needed an expected value (there is no default yet).
    op.execute("UPDATE predictions SET triage_action = 'needs_human' "
               "WHERE triage_action = 'drop' AND triage_reason = 'no_playbook'")
    op.execute("UPDATE predictions SET triage_action = 'needs_human', "
               "triage_reason = 'missing_value' "
               "WHERE triage_action = 'drop' AND triage_reason = 'low_expected_value' "
               "AND value_at_stake IS NULL")


def downgrade() -> None:
    op.execute("UPDATE predictions SET triage_action = 'drop' "
               "WHERE triage_action = 'needs_human' AND triage_reason = 'no_playbook'")
    op.execute("UPDATE predictions SET triage_action = 'drop', "
               "triage_reason = 'low_expected_value' "
               "WHERE triage_action = 'needs_human' AND triage_reason = 'missing_value'")
    op.drop_column("predictions", "value_at_stake_supplied")
