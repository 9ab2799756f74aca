"""SQLite engine for the reference enterprise, and the mapping of database failures.

One file, WAL journal, ``busy_timeout`` so writers queue instead of failing, and
``BEGIN IMMEDIATE`` for write transactions: a transaction that reads and then writes
takes the write lock up front, so two writers never deadlock on a lock upgrade (which
SQLite would report as "database is locked" without waiting). Reads use a deferred
transaction and never block writers under WAL. Safe across threads and processes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc

from decisionops.agent.errors import ConfigError, ToolCallError

__all__ = ["database_errors", "make_engine", "sqlite_url"]


def sqlite_url(url_or_path: str | Path) -> str:
    """Accept a ``sqlite:///…`` URL or a file path; create the parent directory. The
    reference enterprise runs on SQLite only: any other database URL is refused (it was
    once taken for a relative file path)."""
    text = str(url_or_path)
    if text.startswith("sqlite"):
        database = make_url(text).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return text
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        raise ConfigError(
            f"{text.split('://', 1)[0]}://…: the reference enterprise runs on SQLite only "
            "(sqlite:///path/enterprise.sqlite, or a file path); processes on one host share "
            "it as one file (a shared volume), so every worker acts on the same systems",
            field="enterprise_url")
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str, *, busy_timeout_s: float = 30.0, begin: str = "IMMEDIATE") -> Engine:
    """An engine whose transactions ``BEGIN <begin>``: ``IMMEDIATE`` (writes) or
    ``DEFERRED`` (reads: a shared lock that never queues behind a writer)."""
    engine = create_engine(
        url,
        connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
        pool_pre_ping=False,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions on its own; we emit BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    statement = f"BEGIN {begin}"

    def _begin(connection: Any) -> None:
        # On the driver's connection: a statement through SQLAlchemy costs more than the
        # BEGIN itself, and every tool call begins one. The dialect's hook, not a "begin"
        # event, which would make SQLAlchemy dispatch execute events around every
        # statement. SQLAlchemy wraps errors raised here (a lock wait past busy_timeout
        # is an OperationalError).
        connection.driver_connection.execute(statement)

    engine.dialect.do_begin = _begin  # type: ignore[method-assign]
    return engine


@contextmanager
def database_errors(tool: str) -> Iterator[None]:
    """Turn database failures into ``ToolCallError``.

    Operational failures (locked, busy, disconnected, I/O) may succeed on retry;
    anything else the database refuses (a constraint, a bad statement) will not.
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError) as exc:
        raise ToolCallError(f"{tool}: the system is temporarily unavailable ({_reason(exc)})",
                            retryable=True, tool=tool) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise ToolCallError(f"{tool}: the system refused the request ({_reason(exc)})",
                            retryable=False, tool=tool) from exc


def _reason(exc: sa_exc.SQLAlchemyError) -> str:
    # The driver's own message ("database is locked"), never the statement or parameters.
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return str(exc.orig)
    return type(exc).__name__
