"""Migration 0003 creates ``outcome_records`` exactly as ``_outcome_tables`` defines it and
carries the older decision-only ``outcomes`` rows over with their stable ids."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, insert

from decisionops.agent.store import Store, create_store_engine, upgrade
from decisionops.agent.store import _tables as t
from decisionops.agent.store._outcome_tables import outcome_records
from decisionops.agent.store._outcomes import outcome_id

from .conftest import T0


def test_migrated_table_matches_the_table_definition(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'schema.sqlite'}")
    upgrade(engine)
    mine = MetaData()
    outcome_records.to_metadata(mine)
    for name in ("predictions", "decisions"):  # the foreign keys' targets
        t.metadata.tables[name].to_metadata(mine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), mine)
    engine.dispose()
    assert [d for d in diffs if "outcome_records" in repr(d)] == []


def test_upgrade_copies_legacy_outcomes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_store_engine(url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(insert(t.predictions).values(
            id="p1", kind="churn", entity_type="account", entity_id="A1", model="m",
            model_version="1", score=0.7, observed_at=T0, payload={}, source="old",
            ingested_at=T0))
        conn.execute(insert(t.decisions).values(
            id="dec_1", prediction_id="p1", kind="churn", entity_id="A1", status="completed",
            plan_version=1, expected_value=700.0, created_at=T0, updated_at=T0, fence=1))
        conn.execute(insert(t.outcomes), [
            {"decision_id": "dec_1", "label": "retained", "value_realized": 900.0,
             "observed_at": T0, "note": "old", "recorded_at": T0},
            {"decision_id": "dec_1", "label": "retained", "value_realized": 900.0,
             "observed_at": T0, "note": "repeated", "recorded_at": T0}])
    engine.dispose()

    store = Store.open(url)  # migrates to head
    try:
        [row] = store.outcomes.outcome_list()
    finally:
        store.close()

    assert row["id"] == outcome_id("churn", "A1", "retained", T0)
    assert (row["arm"], row["prediction_id"], row["decision_id"]) == ("treated", "p1", "dec_1")
    assert (row["value_realized"], row["expected_value"], row["source"]) == (
        900.0, 700.0, "migrated:outcomes")
