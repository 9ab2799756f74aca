"""Engine construction: SQLite (embedded default) or PostgreSQL, and schema migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from decisionops.agent.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "create_store_engine", "current_revision", "head_revision", "read_connection",
           "upgrade"]

_MIGRATIONS = Path(__file__).parent / "migrations"

HEAD_REVISION = "0017_leg_failures"
"""The newest migration; a test keeps it equal to the scripts' head. Knowing it without
importing Alembic keeps every command's start-up fast (Alembic loads only to migrate)."""


def create_store_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=8, max_overflow=8)
        _sqlite_pragmas(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_size=8, max_overflow=4)
        _ping_when_idle(engine)
        return engine
    raise ConfigError(f"database_url: unsupported backend {parsed.get_backend_name()!r} "
                      "(use sqlite:/// or postgresql+psycopg://)", field="database_url")


_IDLE_BEFORE_PING = 5.0
"""Seconds a pooled PostgreSQL connection may rest before it is pinged at checkout."""


def rested(since: float | None) -> bool:
    """Whether a pooled PostgreSQL connection back in the pool since ``since``
    (``time.monotonic()``; None: never used) has rested long enough to be pinged before
    it is used again: the rule of the store's pool and the checkpointer's."""
    return since is not None and time.monotonic() - since >= _IDLE_BEFORE_PING


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection is alive before it is used, if it has rested
    ``_IDLE_BEFORE_PING`` seconds: a server restart or an idle timeout meanwhile gives
    a new connection instead of a failed statement. SQLAlchemy's ``pool_pre_ping``
    pings at every checkout: a round trip that cost as much as the statement after it
    (a decision's leg checks a connection out dozens of times). A connection that fails
    within its first seconds back in use fails that statement; SQLAlchemy then discards
    every connection of the pool, and the loop retries the work."""

    @event.listens_for(engine, "checkin")
    def _rested(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        record.info["rested_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if not rested(record.info.get("rested_at")):
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # in autocommit, as pool_pre_ping does
        except Exception as exc:  # any failure: this connection is not to be used
            # The pool discards the connection and checks out another (three tries).
            raise DisconnectionError(f"a pooled connection was gone: {exc}") from exc


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # We issue BEGIN ourselves (IMMEDIATE) so that two writers never deadlock on a
        # read-to-write lock upgrade; busy_timeout then queues them.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: every commit survives a process crash; only a power loss or
        # OS crash can drop the newest commits. Transactions that must survive that too
        # (ingest acknowledgements, approval answers, terminal states) ask for FULL:
        # see Store.transaction(durable=True).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    def _begin(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
        # Reads take a deferred (shared) transaction so they never queue behind writers
        # (``read_connection`` marks the connection while it is checked out).
        deferred = dbapi_conn.info.get(_DEFERRED, False)
        # On the driver's connection: every transaction begins here, and a statement
        # through SQLAlchemy costs more than the BEGIN itself. The dialect's hook, not
        # an engine event: any "begin" listener makes SQLAlchemy dispatch its execute
        # events around every statement (~9 us each). SQLAlchemy wraps errors raised
        # here (a lock wait past busy_timeout is an OperationalError).
        dbapi_conn.driver_connection.execute("BEGIN" if deferred else "BEGIN IMMEDIATE")

    engine.dialect.do_begin = _begin  # type: ignore[method-assign]


_DEFERRED = "decisionops.deferred_begin"


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose transactions are reads: deferred on SQLite (a shared lock that
    never queues behind writers); on PostgreSQL in autocommit, each statement its own
    transaction as READ COMMITTED gives it its own snapshot anyway, without the BEGIN
    and the ROLLBACK on return (two round trips of three for a one-statement read)."""
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn
            return
        info = conn.connection.info
        info[_DEFERRED] = True
        try:
            yield conn
        finally:
            info.pop(_DEFERRED, None)


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def head_revision() -> str:
    """The head according to the migration scripts themselves (loads Alembic)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    return script.get_current_head() or ""


def current_revision(engine: Engine) -> str | None:
    """The store's schema revision (None for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
