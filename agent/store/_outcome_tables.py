"""Table of realized outcomes (SQLAlchemy Core), on the shared ``metadata`` of ``_tables``.

``outcome_records`` holds what later happened to an entity, for both arms of the
holdout experiment: *treated* outcomes point at the decision that acted, *control*
outcomes (entities triage held out on purpose) have no decision and point at the
prediction only. Ids are stable (derived from kind, entity, label and time), so a
re-delivered outcome is a no-op. Migration ``0003_outcomes`` creates it and copies the
rows of the older ``outcomes`` table (decision outcomes without stable ids).

Not here: the older ``outcomes`` table (``_tables``), reads and writes (``_outcomes``).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, String, Table, Text

from decisionops.agent.store._tables import Time, metadata

__all__ = ["outcome_records"]

outcome_records = Table(
    "outcome_records", metadata,
    Column("id", String(64), primary_key=True),
    Column("prediction_id", String(200), ForeignKey("predictions.id"), nullable=False),
    Column("decision_id", String(64), ForeignKey("decisions.id")),
    Column("arm", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("label", String(100), nullable=False),
    Column("value_realized", Float, nullable=False),
    Column("expected_value", Float),
    Column("observed_at", Time, nullable=False),
    Column("note", Text),
    Column("source", String(500), nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", Time, nullable=False),
    Index("ix_outcome_records_observed", "observed_at"),
    Index("ix_outcome_records_entity", "kind", "entity_id"),
    Index("ix_outcome_records_prediction", "prediction_id"),
    Index("ix_outcome_records_decision", "decision_id"),
)
