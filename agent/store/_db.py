"""``Database``: the connection to our tables and the one unit of work every write of a
decision goes through.

A write of a decision is always the same protocol, written once here:

1. open a write transaction (durable when the caller says so);
2. check the caller's fencing token against the decision's current one, so a worker
   that lost the lease (paused, partitioned, crashed and restarted) writes nothing;
3. the writes themselves (the repositories' methods taking a ``DecisionTx``);
4. append the transition's ledger entries, in the same transaction, so a transition and
   its proof commit together or not at all.

``with db.decision_tx(decision_id, fence=…, actor=…) as tx:`` does 1, 2 and 4; the
repositories do 3 through ``tx.conn`` and add their entries with ``tx.record(...)``.
Writes that are not a decision's (users, holds, predictions) use ``transaction`` and
append their own entries with ``record``.

Not here: what the writes are (``_decisions``, ``_approvals``, ``_executions`` …), and
the ledger's hash chain (``ledger``).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Insert, Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from decisionops.agent.errors import LeaseLost
from decisionops.agent.models import utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store import ledger as _ledger
from decisionops.agent.store._engine import read_connection
from decisionops.agent.store._notify import WAKE, notify
from decisionops.agent.store.ledger import Event, LedgerEntry

__all__ = ["Database", "DecisionTx", "EventHook", "Repo", "check_fence", "insert_or_skip"]

EventHook = Callable[[Connection, Sequence[Event], datetime], None]

_ASYNC_COMMIT = text("SET LOCAL synchronous_commit TO OFF")
_FENCE = (select(t.decisions.c.fence).where(t.decisions.c.id == bindparam("decision_id"))
          .with_for_update())
"""Locks the decision's row until the unit of work commits: a claim waits for it, so a
holder whose lease lapsed cannot commit after another worker took the lease (SQLite
serializes writers anyway; it renders no FOR UPDATE)."""


@dataclass
class DecisionTx:
    """One transaction writing one decision: its connection, who acts, when, and the
    ledger entries to append when it commits."""

    conn: Connection
    decision_id: str
    actor: str
    now: datetime
    events: list[Event] = field(default_factory=list)
    wake: bool = False
    """Wake the workers when this commits (an answer was recorded; see ``_notify``)."""

    def record(self, event: str, body: dict[str, Any] | None = None, *,
               plan_hash: str | None = None, actor: str | None = None,
               decision_id: str | None = None) -> None:
        """Add a ledger entry for this transition (appended at commit, in order)."""
        self.events.append(Event(actor=actor or self.actor, event=event,
                                 decision_id=decision_id or self.decision_id,
                                 plan_hash=plan_hash, body=body or {}))


class Database:
    """The engine with our transaction discipline (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time. Threads of this process queue on this lock,
        # where the hand-over is immediate, instead of in SQLite's busy handler, which
        # sleeps (1, 2, 5 … 100 ms). Other processes still queue on busy_timeout.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.sqlite else nullcontext())
        self.event_hooks: list[EventHook] = []
        """Called with each batch of ledger events, in their transaction, before it
        commits: what must commit with an event (the notification outbox) is written
        here, once, whichever write recorded the event."""

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[Connection]:
        """A write transaction. ``durable`` ones are synced to disk before they return
        (on SQLite: ``synchronous=FULL`` for this commit; PostgreSQL always syncs)."""
        if not self.sqlite:
            with self.engine.begin() as conn:
                if not durable:
                    # The same trade as SQLite's NORMAL: the commit does not wait for the
                    # WAL flush. A worker crash loses nothing; a database server crash
                    # may lose the newest such commits, never half of one.
                    conn.execute(_ASYNC_COMMIT)
                yield conn
            return
        if not durable:
            with self._write_lock, self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            raw.execute("PRAGMA synchronous=FULL")
            try:
                with conn.begin():
                    yield conn
            finally:
                raw.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with read_connection(self.engine) as conn:
            yield conn

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Yield True when this process may run section ``name`` now (no other worker is
        in it); False when another one is. Never waits. (PostgreSQL advisory lock; on
        SQLite one loop runs, so always True.)"""
        if self.sqlite:
            yield True
            return
        key = zlib.crc32(f"decisionops:{name}".encode())
        with self.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

    def record(self, conn: Connection, events: Iterable[Event], at: datetime | None = None
               ) -> list[LedgerEntry]:
        """Append ledger entries within ``conn``'s transaction."""
        events = list(events)
        at = at or utcnow()
        entries = _ledger.append(conn, events, at=at)
        self._hooks(conn, events, at)
        return entries

    def _hooks(self, conn: Connection, events: Sequence[Event], at: datetime) -> None:
        for hook in self.event_hooks:
            hook(conn, events, at)

    @contextmanager
    def decision_tx(self, decision_id: str, *, fence: int | None, actor: str,
                    durable: bool = False) -> Iterator[DecisionTx]:
        """The unit of work of a decision: fence check, the caller's writes, ledger
        entries, one commit. ``fence=None``: a write that needs no lease (an approver's
        answer is a compare-and-set on its request instead)."""
        now = utcnow()
        with self.transaction(durable=durable) as conn:
            check_fence(conn, decision_id, fence)
            tx = DecisionTx(conn, decision_id, actor, now)
            yield tx
            if tx.events:
                _ledger.append(conn, tx.events, at=now, entries=False)
                self._hooks(conn, tx.events, now)
            if tx.wake:
                notify(conn, WAKE)


def insert_or_skip(table: Table, *returning: Column[Any]) -> dict[str, Insert]:
    """``INSERT … ON CONFLICT DO NOTHING`` into ``table`` (optionally ``RETURNING``),
    built once for each dialect the store runs on, by dialect name: executed with rows
    as parameters, it compiles once (``conn.execute(stmt[conn.dialect.name], rows)``)."""
    out: dict[str, Insert] = {}
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite)):
        stmt = dialect.insert(table).on_conflict_do_nothing()
        out[name] = stmt.returning(*returning) if returning else stmt
    return out


def check_fence(conn: Connection, decision_id: str, fence: int | None) -> None:
    """Raise ``LeaseLost`` unless ``fence`` is the decision's current fencing token; the
    token then stays current until the transaction ends (the row is locked)."""
    if fence is None:
        return
    current = conn.scalar(_FENCE, {"decision_id": decision_id})
    if current != fence:
        raise LeaseLost(f"lost the lease on {decision_id} (fence {fence}, now {current})")


class Repo:
    """Base of the store's repositories: one aggregate's reads and writes over the
    shared ``Database``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def engine(self) -> Engine:
        return self._db.engine

    def transaction(self, *, durable: bool = False) -> AbstractContextManager[Connection]:
        return self._db.transaction(durable=durable)

    def reading(self) -> AbstractContextManager[Connection]:
        return self._db.reading()

    def record(self, conn: Connection, events: Iterable[Event], at: datetime | None = None
               ) -> list[LedgerEntry]:
        return self._db.record(conn, events, at)
