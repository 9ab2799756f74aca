"""Outcome records: realized outcomes of treated (decided) and control (held-out)
predictions, with stable ids; copies the rows of the older decision-only ``outcomes``

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import hashlib
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _outcome_id(kind, entity_id, label, observed_at):
    # Frozen copy of agent.store._outcomes.outcome_id (short_id("out", ...)): a migration
    # must not change when the application code does.
    if observed_at.tzinfo is None:
        observed_at = observed_at.replace(tzinfo=UTC)
    parts = [kind, entity_id, label, observed_at.astimezone(UTC).isoformat()]
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return "out_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def upgrade() -> None:
    records = op.create_table('outcome_records',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('prediction_id', sa.String(length=200), nullable=False),
    sa.Column('decision_id', sa.String(length=64), nullable=True),
    sa.Column('arm', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('entity_id', sa.String(length=200), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('value_realized', sa.Float(), nullable=False),
    sa.Column('expected_value', sa.Float(), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], ),
    sa.ForeignKeyConstraint(['prediction_id'], ['predictions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outcome_records', schema=None) as batch_op:
        batch_op.create_index('ix_outcome_records_decision', ['decision_id'], unique=False)
        batch_op.create_index('ix_outcome_records_entity', ['kind', 'entity_id'], unique=False)
        batch_op.create_index('ix_outcome_records_observed', ['observed_at'], unique=False)
        batch_op.create_index('ix_outcome_records_prediction', ['prediction_id'], unique=False)

    # Carry the older decision-only outcomes over (they are all treated outcomes).
    time = sa.DateTime(timezone=True)
    old = sa.table('outcomes', sa.column('id', sa.Integer()), sa.column('decision_id'),
                   sa.column('label'), sa.column('value_realized', sa.Float()),
                   sa.column('observed_at', time), sa.column('note'),
                   sa.column('recorded_at', time))
    decisions = sa.table('decisions', sa.column('id'), sa.column('prediction_id'),
                         sa.column('kind'), sa.column('entity_id'),
                         sa.column('expected_value', sa.Float()))
    legacy = op.get_bind().execute(
        sa.select(old.c.decision_id, old.c.label, old.c.value_realized, old.c.observed_at,
                  old.c.note, old.c.recorded_at, decisions.c.prediction_id, decisions.c.kind,
                  decisions.c.entity_id, decisions.c.expected_value)
        .join(decisions, decisions.c.id == old.c.decision_id).order_by(old.c.id))
    rows, seen = [], set()
    for r in legacy:
        oid = _outcome_id(r.kind, r.entity_id, r.label, r.observed_at)
        if oid in seen:
            continue
        seen.add(oid)
        rows.append({"id": oid, "prediction_id": r.prediction_id, "decision_id": r.decision_id,
                     "arm": "treated", "kind": r.kind, "entity_id": r.entity_id,
                     "label": r.label, "value_realized": r.value_realized,
                     "expected_value": r.expected_value, "observed_at": r.observed_at,
                     "note": r.note, "source": "migrated:outcomes",
                     "recorded_by": "migration:0003", "recorded_at": r.recorded_at})
    if rows:
        op.bulk_insert(records, rows)


def downgrade() -> None:
    with op.batch_alter_table('outcome_records', schema=None) as batch_op:
        batch_op.drop_index('ix_outcome_records_prediction')
        batch_op.drop_index('ix_outcome_records_observed')
        batch_op.drop_index('ix_outcome_records_entity')
        batch_op.drop_index('ix_outcome_records_decision')

    op.drop_table('outcome_records')
