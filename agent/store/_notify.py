"""Waking workers across processes when there is something to do: PostgreSQL's
``LISTEN``/``NOTIFY``.

A transaction that records an answer (``DecisionTx.wake``), releases a hold or stores
new predictions notifies ``decisionops_wake`` as it commits (PostgreSQL delivers a
notification only if its transaction commits). Each
worker listens on a connection of its own, in a thread, and wakes its loop on every
notification; polling stays the fallback (a listener that lost its connection reconnects,
and the loop's poll covers the gap). SQLite has no such channel: one process runs the
loop there, and answers recorded in that process wake it directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, Engine, text

__all__ = ["WAKE", "Listener", "notify"]

WAKE = "decisionops_wake"
_NOTIFY = text("SELECT pg_notify(:channel, '')")
_log = logging.getLogger(__name__)


def notify(conn: Connection, channel: str) -> None:
    """Notify ``channel`` when ``conn``'s transaction commits (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": channel})


class Listener:
    """Calls ``callback`` on each notification of ``channel``, from a thread of its own."""

    def __init__(self, engine: Engine, channel: str, callback: Callable[[], None]) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._channel = channel
        self._callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"listen {channel}")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                # Keepalives: a connection a firewall dropped fails within a minute
                # instead of leaving the listener deaf (polling covers meanwhile).
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5,
                                     keepalives=1, keepalives_idle=30,
                                     keepalives_interval=10, keepalives_count=3) as conn:
                    conn.execute(f'LISTEN "{self._channel}"')
                    failures = 0
                    self._callback()  # answers recorded while it was not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self._callback()
            except psycopg.Error as exc:
                failures += 1
                _log.warning("listening for %s failed (%s); polling meanwhile",
                             self._channel, exc)
                self._stop.wait(min(10.0, 0.5 * 2 ** failures))
