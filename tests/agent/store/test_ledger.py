"""The ledger's hash chain catches tampering at the first bad entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from decisionops.agent.store import Event, Store
from decisionops.agent.store.ledger import verify


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    url = (request.getfixturevalue("pg_url") if request.param == "postgres"
           else f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    store = Store.open(url)
    with store.transaction() as conn:
        store.db.record(conn, [Event(actor=f"tester{i}", event="test.event", decision_id="dec_1",
                                  body={"n": i, "text": "ünïcode"}) for i in range(1, 11)])
    yield store
    store.close()


def _exec(store: Store, sql: str, **params: object) -> None:
    with store.transaction() as conn:
        conn.execute(text(sql), params)


def test_untouched_chain_verifies(store: Store) -> None:
    report = verify(store.engine)
    assert report.ok
    assert report.entries == 10


def test_appends_from_later_transactions_continue_the_chain(store: Store) -> None:
    with store.transaction() as conn:
        entries = store.db.record(conn, [Event(actor="a", event="more")])
    assert entries[0].seq == 11
    assert verify(store.engine).ok


def test_flipped_byte_is_caught_at_that_entry(store: Store) -> None:
    with store.reading() as conn:
        body = conn.execute(text("select body from ledger where seq = 4")).scalar_one()
    if not isinstance(body, str):  # PostgreSQL returns the JSON decoded
        import json
        body = json.dumps(body)
    _exec(store, "update ledger set body = :b where seq = 4", b=body.replace("4", "5", 1))
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq == 4
    assert "altered" in report.problem


def test_changed_actor_is_caught(store: Store) -> None:
    _exec(store, "update ledger set actor = 'mallory' where seq = 7")
    report = verify(store.engine)
    assert (report.ok, report.first_bad_seq) == (False, 7)


def test_deleted_row_is_caught(store: Store) -> None:
    _exec(store, "delete from ledger where seq = 6")
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "missing" in report.problem


def test_reordered_pair_is_caught(store: Store) -> None:
    # Swap the content of entries 3 and 4, keeping their sequence numbers.
    _exec(store, "update ledger set seq = -3 where seq = 3")
    _exec(store, "update ledger set seq = 3 where seq = 4")
    _exec(store, "update ledger set seq = 4 where seq = -3")
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq == 3


def test_truncated_tail_is_caught_by_the_head(store: Store) -> None:
    _exec(store, "delete from ledger where seq >= 9")
    report = verify(store.engine)
    assert not report.ok
    assert report.first_bad_seq == 9
    assert "removed from the end" in report.problem


def test_concurrent_appenders_keep_one_linear_chain(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def append(i: int) -> None:
        with store.transaction() as conn:
            store.db.record(conn, [Event(actor=f"w{i}", event="race", body={"i": i, "j": j})
                                for j in range(3)])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, range(40)))
    report = verify(store.engine)
    assert report.ok
    assert report.entries == 10 + 40 * 3
