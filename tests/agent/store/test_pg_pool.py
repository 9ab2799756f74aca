"""The PostgreSQL store's connection pool: a connection the server dropped while it
rested in the pool is replaced at checkout, not handed to a statement to fail on; a
connection back in use within seconds is not pinged (a round trip for every checkout)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from decisionops.agent.store import _engine


@pytest.mark.postgres
def test_a_rested_connection_the_server_dropped_is_replaced(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine.create_store_engine(pg_url)
    pings: list[int] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda conn: pings.append(1) or ping(conn))
    try:
        with _engine.read_connection(engine) as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with _engine.read_connection(engine) as conn:  # back at once: no ping
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
        assert pings == []
        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(_engine, "_IDLE_BEFORE_PING", 0.0)  # it has rested long enough
        with _engine.read_connection(engine) as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        assert pings == [1]
        with engine.begin() as conn:  # writes work on the replacement too
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_reads_run_without_a_transaction_and_writes_in_one(pg_url: str) -> None:
    engine = _engine.create_store_engine(pg_url)
    try:
        with _engine.read_connection(engine) as conn:
            assert conn.execute(text("SELECT txid_current_if_assigned()")).scalar() is None
            status = conn.connection.driver_connection.info.transaction_status
            assert status == psycopg.pq.TransactionStatus.IDLE  # autocommit: no BEGIN
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            status = conn.connection.driver_connection.info.transaction_status
            assert status == psycopg.pq.TransactionStatus.INTRANS
    finally:
        engine.dispose()
