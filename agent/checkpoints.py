"""LangGraph checkpointers for the decision graph: SQLite (embedded default) or
PostgreSQL (scale-out), chosen by URL, plus pruning of finished threads.

SQLite: one connection shared by the process (SqliteSaver serializes on its own lock).
PostgreSQL: a psycopg pool with the settings PostgresSaver requires (autocommit,
dict rows, no server-side prepares so it works behind PgBouncer too); ``setup()`` runs
under an advisory lock so several workers starting at once do not race its migrations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from agent.errors import ConfigError

__all__ = ["is_postgres_url", "open_checkpointer", "prune_threads", "psycopg_conninfo"]

_SETUP_LOCK = 7_243_012


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:"))


def psycopg_conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def open_checkpointer(url: str, stack: ExitStack, *, pool_size: int = 4) -> BaseCheckpointSaver:
    if is_postgres_url(url):
        return _postgres(url, stack, pool_size)
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f"checkpoint_url: unsupported {url.split('://')[0]!r}; use a SQLite "
                          "path or a postgresql+psycopg:// URL", field="checkpoint_url")
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    stack.callback(conn.close)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def _postgres(url: str, stack: ExitStack, pool_size: int) -> BaseCheckpointSaver:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    conninfo = psycopg_conninfo(url)
    pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, open=True,
                          kwargs={"autocommit": True, "prepare_threshold": 0,
                                  "row_factory": dict_row},
                          check=ConnectionPool.check_connection)
    stack.callback(pool.close)
    saver = PostgresSaver(pool)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    return saver


def prune_threads(saver: BaseCheckpointSaver, thread_ids: Iterable[str]) -> int:
    """Delete the checkpoints of finished decisions; the store keeps their record."""
    count = 0
    for thread_id in thread_ids:
        saver.delete_thread(thread_id)
        count += 1
    return count
