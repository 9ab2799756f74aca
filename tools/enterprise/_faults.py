"""Fault injection: persisted failures the reference enterprise plays back on tool calls.

A fault targets one tool (or ``*`` for every tool) and fires on the next ``times``
calls, oldest fault first; each call consumes one count atomically, so faults behave
the same across threads and processes. The enterprise decides what each mode does
(see ``Enterprise.inject_fault``); this module only stores and consumes them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Connection, or_, select, update
from sqlalchemy.exc import DBAPIError

from decisionops.tools.enterprise.schema import faults

__all__ = ["ANY_TOOL", "Fault", "FaultMode", "add_fault", "list_faults", "pending", "take_fault"]

ANY_TOOL = "*"


class FaultMode(StrEnum):
    FAIL_RETRYABLE = "fail_retryable"
    """Raise ``ToolCallError(retryable=True)`` before any effect."""
    FAIL_PERMANENT = "fail_permanent"
    """Raise ``ToolCallError(retryable=False)`` before any effect."""
    COMMIT_THEN_FAIL = "commit_then_fail"
    """Commit the effect and its ``tool_calls`` row, then raise a retryable error
    (a connection dropped after the commit)."""
    COMMIT_THEN_TIMEOUT = "commit_then_timeout"
    """Commit the effect and its ``tool_calls`` row, then raise a non-retryable error
    (a client that gave up at its deadline and does not retry)."""
    DELAY = "delay"
    """Sleep ``delay_s``, then proceed normally."""


@dataclass(frozen=True)
class Fault:
    fault_id: int
    tool: str
    mode: FaultMode
    remaining: int
    delay_s: float


def add_fault(conn: Connection, *, tool: str, mode: FaultMode, times: int, delay_s: float,
              created_at: str) -> int:
    result = conn.execute(faults.insert().values(
        tool=tool, mode=mode.value, remaining=times, delay_s=delay_s, created_at=created_at))
    return int(result.inserted_primary_key[0])


def _matching(tool: str) -> ColumnElement[bool]:
    return (faults.c.remaining > 0) & or_(faults.c.tool == tool, faults.c.tool == ANY_TOOL)


_PENDING = (f"SELECT 1 FROM {faults.name} WHERE {faults.c.remaining.name} > 0 "
            f"AND {faults.c.tool.name} IN (?, '{ANY_TOOL}') LIMIT 1")
"""The check every tool call (read or write) makes, on the driver's connection: through
SQLAlchemy it cost more than the query itself (a decision's nine calls, ~4 % of the
loop's CPU)."""


def pending(conn: Connection, tool: str) -> bool:
    """Cheap check, so calls without faults never take the write lock for them (in
    ``conn``'s transaction; the reference enterprise is SQLite)."""
    try:
        return conn.connection.driver_connection.execute(_PENDING, (tool,)).fetchone() is not None
    except sqlite3.Error as exc:  # wrapped as SQLAlchemy would (``database_errors``)
        raise DBAPIError.instance(_PENDING, (tool,), exc, sqlite3.Error) from exc


def take_fault(conn: Connection, tool: str) -> Fault | None:
    """Consume one count of the oldest matching fault. Call inside a write transaction."""
    row = conn.execute(
        select(faults).where(_matching(tool)).order_by(faults.c.fault_id).limit(1)
    ).mappings().first()
    if row is None:
        return None
    conn.execute(update(faults).where(faults.c.fault_id == row["fault_id"])
                 .values(remaining=faults.c.remaining - 1))
    return Fault(row["fault_id"], row["tool"], FaultMode(row["mode"]), row["remaining"] - 1,
                 row["delay_s"])


def list_faults(conn: Connection) -> list[Fault]:
    rows = conn.execute(select(faults).order_by(faults.c.fault_id)).mappings()
    return [Fault(r["fault_id"], r["tool"], FaultMode(r["mode"]), r["remaining"], r["delay_s"])
            for r in rows]
