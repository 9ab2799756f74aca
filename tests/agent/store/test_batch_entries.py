"""Accepted predictions: one ledger entry per batch, committing to the hash of every row,
and any single row proven against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from decisionops.agent.errors import NotFoundError
from decisionops.agent.hashing import merkle_check
from decisionops.agent.models import Prediction
from decisionops.agent.store import Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (request.getfixturevalue("pg_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    opened = Store.open(url)
    yield opened
    opened.close()


def _p(i: int, **over: object) -> Prediction:
    return Prediction.model_validate({
        "id": f"p-{i}", "model": "m", "kind": "churn", "entity_type": "account",
        "entity_id": f"E-{i}", "score": 0.5, "value_at_stake": 1000.5,
        "features": {"b": 1.0, "a": "x", "n": None}, "explanation": {"z": 0.3, "a": -0.1},
        "observed_at": "2026-11-20T08:00:00Z", **over})


def test_one_entry_per_batch_proves_every_row(store: Store) -> None:
    first = store.predictions.ingest([_p(i) for i in (3, 1, 2, 10, 7)], source="f", actor="ann")
    again = store.predictions.ingest([_p(1), _p(11)], source="g", actor="bob")
    assert (first.new, again.new, again.duplicates) == (["p-3", "p-1", "p-2", "p-10", "p-7"],
                                                        ["p-11"], ["p-1"])
    assert again.stored_by == {"p-1": first.seq}
    assert again.changed == []  # the same prediction, re-sent
    changed = store.predictions.ingest([_p(1, score=0.9), _p(2)], source="h", actor="bob")
    assert (changed.new, changed.duplicates, changed.changed) == ([], ["p-1", "p-2"], ["p-1"])
    entries = [e for e in store.ledger.entries() if e.event == "predictions.ingested"]
    assert [(e.seq, e.actor, e.body["rows"], e.body["source"]) for e in entries] == [
        (first.seq, "ann", 5, "f"), (again.seq, "bob", 1, "g")]
    for pid in ("p-1", "p-10", "p-2", "p-3", "p-7"):
        proof = store.predictions.proof(pid)
        assert proof.ok and proof.seq == first.seq and proof.rows == 5
        assert proof.root == entries[0].body["root"]
        assert merkle_check(bytes.fromhex(proof.leaf), proof.path, proof.root)
    assert store.predictions.row("p-3")["expected_value"] == 500.25  # kept at intake
    with pytest.raises(NotFoundError, match="no prediction"):
        store.predictions.proof("p-404")


def test_an_altered_row_no_longer_proves_and_fails_verify_though_the_chain_holds(
        store: Store) -> None:
    store.predictions.ingest([_p(i) for i in range(4)], source="f", actor="ann")
    with store.transaction() as conn:
        conn.execute(update(t.predictions).where(t.predictions.c.id == "p-2")
                     .values(payload=_p(2, score=0.99).model_dump(mode="json")))
    report = verify(store.engine)
    assert report.chain_ok and not report.ok  # the rows are checked against it (trial 14)
    # The altered payload is not "the ledger's" (trial 31 #6: "0.99 in the ledger"):
    # its batch's root does not prove it; the column still says what intake stored.
    [found] = [d for d in report.disagreements if d.id == "p-2"]
    assert (found.field, found.row) == ("payload.score", 0.99)
    assert "not proven by its batch's root; column score: 0.5" in found.ledger, found
    proof = store.predictions.proof("p-2")
    assert not proof.ok and "does not hash to the root" in proof.problems[0]
    assert any("the ledger proves neither" in p for p in proof.problems), proof.problems
    assert not any("the row the ledger proves says" in p for p in proof.problems)
    assert store.predictions.proof("p-1").ok is False  # its batch no longer adds up either


@pytest.mark.parametrize("change", [{"score": 0.99}, {"value_at_stake": 4_950_000.0},
                                    {"entity_id": "ACC-10999"}, {"kind": "fraud"}])
def test_a_column_altered_beside_its_proven_payload_does_not_prove(
        store: Store, change: dict) -> None:
    """The columns triage, listings and ``predictions show`` read are copies of the row
    the ledger proves: one changed on its own (the payload intact) is a row altered."""
    store.predictions.ingest([_p(i) for i in range(3)], source="f", actor="ann")
    with store.transaction() as conn:
        conn.execute(update(t.predictions).where(t.predictions.c.id == "p-1").values(**change))
    proof = store.predictions.proof("p-1")
    (name,) = change
    assert not proof.ok and any(f"column {name}" in p for p in proof.problems), proof.problems
    assert store.predictions.proof("p-0").ok  # the batch itself is intact


def test_times_are_stored_as_every_other_write_stores_them(store: Store) -> None:
    """Rows go in through the driver's executemany: their times must compare with the
    times the rest of the store binds (a window by ingestion time, the archive's floor)."""
    store.predictions.ingest([_p(i) for i in range(3)], source="f", actor="ann")
    p = t.predictions
    with store.reading() as conn:
        at = conn.scalar(select(p.c.ingested_at).limit(1))
        assert conn.scalar(select(func.count()).select_from(p).where(
            p.c.ingested_at <= at, p.c.observed_at <= _p(0).observed_at)) == 3
        if store.engine.dialect.name == "sqlite":
            raw = conn.exec_driver_sql("select observed_at, ingested_at from predictions").first()
            assert raw[0] == "2026-11-20 08:00:00.000000" and "+" not in raw[1]
