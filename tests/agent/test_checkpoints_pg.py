"""The PostgreSQL checkpointer serves a worker's planning threads at once, a pooled
connection each: LangGraph's ``PostgresSaver`` holds one lock around every operation,
even over a connection pool (langgraph#7259), so 32 planning threads wrote their
checkpoints one at a time."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from decisionops.agent.checkpoints import open_checkpointer


def _put(saver, thread_id: str) -> None:  # type: ignore[no-untyped-def]
    saver.put({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}},
              empty_checkpoint(), {"source": "input", "step": -1}, {})


@pytest.mark.postgres
def test_one_thread_reading_does_not_hold_up_another_writing(pg_url: str) -> None:
    with ExitStack() as stack:
        saver = open_checkpointer(pg_url, stack, pool_size=4)
        _put(saver, "t-1")
        # A listing being read holds its pooled connection until it is consumed.
        reading = saver.list({"configurable": {"thread_id": "t-1"}})
        assert next(reading).config["configurable"]["thread_id"] == "t-1"
        wrote = threading.Event()
        writer = threading.Thread(target=lambda: (_put(saver, "t-2"), wrote.set()),
                                  daemon=True)
        writer.start()
        assert wrote.wait(10), "the write waited for another thread's read to end"
        list(reading)
        got = saver.get_tuple({"configurable": {"thread_id": "t-2"}})
        assert got is not None


@pytest.mark.postgres
def test_threads_beyond_the_pool_wait_their_turn(pg_url: str) -> None:
    with ExitStack() as stack:
        saver = open_checkpointer(pg_url, stack, pool_size=2)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(5):
                    _put(saver, f"w-{i}-{j}")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert all(saver.get_tuple({"configurable": {"thread_id": f"w-{i}-{j}"}})
                   for i in range(8) for j in range(5))


@pytest.mark.postgres
def test_a_rested_connection_the_server_dropped_is_replaced_and_a_busy_one_not_pinged(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the store's pool (``_engine._IDLE_BEFORE_PING``): a checkpoint operation does
    not pay a round trip to check its connection when the connection was in use a moment
    ago (a leg takes one from the pool several times); one that rested is checked, and a
    connection the server dropped meanwhile is replaced, not handed to the operation."""
    import psycopg
    from psycopg_pool import ConnectionPool

    from decisionops.agent.checkpoints import psycopg_conninfo
    from decisionops.agent.store import _engine

    pings: list[int] = []
    check = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection",
                        staticmethod(lambda conn: pings.append(1) or check(conn)))
    with ExitStack() as stack:
        saver = open_checkpointer(pg_url, stack, pool_size=1)
        _put(saver, "p-1")
        with saver.conn.connection() as conn:
            pid = conn.info.backend_pid
        assert saver.get_tuple({"configurable": {"thread_id": "p-1"}}) is not None
        assert pings == []  # back in use at once: not checked
        with psycopg.connect(psycopg_conninfo(pg_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(_engine, "_IDLE_BEFORE_PING", 0.0)  # it has rested long enough
        _put(saver, "p-2")  # on a new connection, not a failed write
        assert pings == [1]
        with saver.conn.connection() as conn:
            assert conn.info.backend_pid != pid
        assert saver.get_tuple({"configurable": {"thread_id": "p-2"}}) is not None
