"""``ledger verify`` checks every stored prediction against its batch's ledger entry
(trial 14: a score and a value at stake rewritten in the predictions table verified;
only ``ledger prove-row`` of that one id caught it)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from decisionops.agent.models import Prediction
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify
from tests.agent.store.conftest import World
from tests.agent.store.test_ledger_rows_agree import _found


def _batch(world: World, n: int = 5) -> list[str]:
    """``n`` more predictions in one batch (one ``predictions.ingested`` entry)."""
    ids = [f"bulk-{i}" for i in range(n)]
    world.rt.store.predictions.ingest([Prediction(
        id=pid, model="churn-gbm", kind="churn", entity_type="account",
        entity_id=f"ACC-2{i:04d}", score=0.3, value_at_stake=1000,
        observed_at="2026-11-20T08:00:00Z") for i, pid in enumerate(ids)],
        source="test", actor="test")
    return ids


def test_every_stored_prediction_is_checked_and_honest_rows_agree(world: World) -> None:
    _batch(world)
    report = verify(world.rt.store.engine)
    assert report.ok, report.problem
    assert report.rows == 3 + 5  # the three decisions' predictions and the batch


def test_a_rewritten_score_and_value_at_stake_are_named_by_row(world: World) -> None:
    ids = _batch(world)
    with world.rt.store.transaction() as conn:
        conn.execute(update(t.predictions).where(t.predictions.c.id == ids[2])
                     .values(score=0.99, value_at_stake=999_999))
    report = verify(world.rt.store.engine)
    assert not report.ok
    assert sorted(_found(report)) == [("predictions", ids[2], "score", 0.99, 0.3),
                                      ("predictions", ids[2], "value_at_stake", 999_999, 1000)]
    assert "prediction bulk-2: score is 0.99 in the store, 0.3 in the ledger" in report.problem


def test_a_rewritten_row_and_a_removed_one_fail_their_batch(world: World) -> None:
    ids = _batch(world)
    with world.rt.store.transaction() as conn:
        row = conn.execute(t.predictions.select().where(t.predictions.c.id == ids[0])).one()
        payload = {**row.payload, "features": {"note": "rewritten"}}
        conn.execute(update(t.predictions).where(t.predictions.c.id == ids[0])
                     .values(payload=payload))
    found = _found(verify(world.rt.store.engine))
    assert [(f[0], f[2]) for f in found] == [("predictions", "rows")], found
    assert found[0][1].startswith("batch ") and found[0][4].startswith("5 rows, root ")
    with world.rt.store.transaction() as conn:
        conn.execute(delete(t.predictions).where(t.predictions.c.id.in_(ids)))
    (removed,) = verify(world.rt.store.engine).disagreements
    assert (removed.field, removed.ledger) == ("row", "5 rows")
    assert "is in the ledger" in str(removed) and "not in the store" in str(removed)


def test_a_row_accepted_under_earlier_rules_still_verifies(world: World) -> None:
    """(review: each row was re-validated under today's rules, so a value at stake of
    1e300, taken before the 1e15 cap, read as tampering)"""
    import json
    from datetime import UTC, datetime

    from decisionops.agent.hashing import merkle_leaf
    from decisionops.agent.models import utcnow
    from decisionops.agent.sources import PredictionRow

    valid = Prediction(id="old-1", model="churn-gbm", kind="churn", entity_type="account",
                       entity_id="ACC-30001", score=0.3, value_at_stake=1000,
                       observed_at="2026-11-20T08:00:00Z")
    payload = json.loads(valid.model_dump_json()) | {"value_at_stake": 1e300}
    text = json.dumps(payload, separators=(",", ":"))
    with pytest.raises(ValueError):
        Prediction.model_validate_json(text)  # today's rules refuse it
    row = PredictionRow(valid.id, valid.kind, valid.entity_type, valid.entity_id, valid.model,
                        valid.model_version, valid.score, 1e300,
                        datetime(2026, 11, 20, 8, tzinfo=UTC), None, text,
                        merkle_leaf(text.encode("utf-8")))
    with world.rt.store.transaction() as conn:
        world.rt.store.predictions.insert_new(conn, [row], source="old", actor="test",
                                              now=utcnow())
    report = verify(world.rt.store.engine)
    assert report.ok, report.problem
    assert world.rt.store.predictions.proof("old-1").ok
