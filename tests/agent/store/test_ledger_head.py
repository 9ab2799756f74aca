"""The head row (``ledger_head``): every append locks it and moves it to the newest entry,
so ``verify`` checks it against the chain's end and says which of the three went wrong:
entries removed from the end, a head set back behind the chain, or a hash that is not
the last entry's. Without the row nothing can be appended: a missing head fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from decisionops.agent.store import Event, Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import GENESIS, anchor, verify


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Ten entries."""
    url = (request.getfixturevalue("pg_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store = Store.open(url)
    with store.transaction() as conn:
        store.db.record(conn, [Event(actor="tester", event="test.event", body={"n": i})
                               for i in range(1, 11)])
    yield store
    store.close()


def _hash_of(store: Store, seq: int) -> str:
    with store.reading() as conn:
        return conn.scalar(select(t.ledger.c.hash).where(t.ledger.c.seq == seq))


def test_a_wrong_head_hash_is_named_as_such(store: Store) -> None:
    last = _hash_of(store, 10)
    with store.transaction() as conn:
        conn.execute(update(t.ledger_head).values(hash="abc"))
    report = verify(store.engine)
    assert not report.ok and not report.chain_ok
    assert report.first_bad_seq == 10
    assert "removed" not in report.problem
    assert "the head row records entry 10 with hash abc" in report.problem
    assert f"entry 10's hash is {last}" in report.problem


def test_a_head_set_back_is_not_called_a_removal(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(update(t.ledger_head).values(seq=8, hash=_hash_of(store, 8)))
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq == 9
    assert "removed" not in report.problem
    assert "the chain runs to entry 10 but the head row records entry 8" in report.problem


def test_entries_removed_from_the_end_are_still_named(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(delete(t.ledger).where(t.ledger.c.seq >= 9))
    report = verify(store.engine)
    assert (report.ok, report.first_bad_seq) == (False, 9)
    assert "the chain ends at entry 8 but the head row records entry 10" in report.problem
    assert "removed from the end" in report.problem


def test_a_missing_head_fails_and_says_what_it_should_hold(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(delete(t.ledger_head))
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq is None
    assert "the head row (ledger_head) is missing" in report.problem
    assert "nothing can be appended" in report.problem
    assert f"entry 10, hash {_hash_of(store, 10)}" in report.problem


def test_a_missing_head_with_anchors_says_whether_they_hold(store: Store) -> None:
    kept = anchor(store.engine)
    with store.transaction() as conn:
        conn.execute(delete(t.ledger_head))
    report = verify(store.engine)
    assert "check the chain against an anchor (--anchor)" in report.problem
    report = verify(store.engine, [kept])
    assert not report.ok
    assert "the head row (ledger_head) is missing" in report.problem
    assert "the 1 anchor(s) given hold, so no entry up to entry 10 was cut off" in report.problem
    with store.transaction() as conn:  # a tail cut off with the head: the anchor says so
        conn.execute(delete(t.ledger).where(t.ledger.c.seq >= 9))
    report = verify(store.engine, [kept])
    assert not report.ok
    assert "missing" not in report.problem and "10" in report.problem


def test_a_missing_head_fails_on_an_empty_ledger_too(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    try:
        assert verify(store.engine).ok
        with store.transaction() as conn:
            conn.execute(delete(t.ledger_head))
        report = verify(store.engine)
        assert not report.ok
        assert "the head row (ledger_head) is missing" in report.problem
        assert f"entry 0, hash {GENESIS}" in report.problem
    finally:
        store.close()
