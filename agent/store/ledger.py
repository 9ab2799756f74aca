"""The ledger: an append-only, hash-chained record of every transition.

Each entry's hash covers its own content and the previous entry's hash, so altering,
deleting or reordering any entry breaks the chain from that point on. Appends happen
inside the caller's transaction (so a transition and its ledger entry commit together)
and serialize on the single ``ledger_head`` row, which also records the newest hash so
a truncated tail is caught too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from agent.hashing import canonical_json
from agent.store._tables import ledger, ledger_head

__all__ = ["GENESIS", "Event", "LedgerEntry", "VerifyReport", "append", "entry_hash", "verify"]

GENESIS = "0" * 64

_HEAD_FOR_UPDATE = (select(ledger_head.c.seq, ledger_head.c.hash)
                    .where(ledger_head.c.id == 1).with_for_update())
_INSERT = insert(ledger)
_SET_HEAD = (update(ledger_head).where(ledger_head.c.id == 1)
             .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")))


class Event(BaseModel):
    """A transition to record."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    actor: str
    event: str
    decision_id: str | None = None
    plan_hash: str | None = None
    body: dict[str, Any] = Field(default_factory=dict)


class LedgerEntry(Event):
    seq: int
    at: datetime
    prev_hash: str
    hash: str


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def entry_hash(prev_hash: str, seq: int, at: datetime, event: Event) -> str:
    content = canonical_json({
        "seq": seq, "at": _aware(at).isoformat(timespec="microseconds"), "actor": event.actor,
        "event": event.event, "decision_id": event.decision_id, "plan_hash": event.plan_hash,
        "body": event.body,
    })
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def append(conn: Connection, events: Iterable[Event], *, at: datetime) -> list[LedgerEntry]:
    """Append ``events`` in order within ``conn``'s transaction."""
    events = list(events)
    if not events:
        return []
    at = _aware(at)
    # Lock the head row (PostgreSQL: FOR UPDATE; SQLite: the write transaction already
    # holds the database lock), so concurrent appenders queue and the chain stays linear.
    head = conn.execute(_HEAD_FOR_UPDATE).one()
    # Taken under the head lock, so times never run backwards along the chain.
    at = max(at, datetime.now(UTC))
    seq, prev = head.seq, head.hash
    rows = []
    entries = []
    for event in events:
        seq += 1
        digest = entry_hash(prev, seq, at, event)
        rows.append({"seq": seq, "at": at, "actor": event.actor, "event": event.event,
                     "decision_id": event.decision_id, "plan_hash": event.plan_hash,
                     "body": event.body, "prev_hash": prev, "hash": digest})
        entries.append(LedgerEntry(seq=seq, at=at, prev_hash=prev, hash=digest,
                                   **event.model_dump()))
        prev = digest
    conn.execute(_INSERT, rows)
    conn.execute(_SET_HEAD, {"new_seq": seq, "new_hash": prev})
    return entries


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_hash: str = GENESIS


def _rows(engine: Engine) -> Iterator[Any]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            select(ledger).order_by(ledger.c.seq))
        yield from result


def verify(engine: Engine) -> VerifyReport:
    """Walk the chain; report the first entry that does not verify."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in _rows(engine):
        if row.seq != expected_seq:
            what = "missing" if row.seq > expected_seq else "out of order"
            return VerifyReport(False, count, expected_seq,
                                f"entry {expected_seq} is {what} (found {row.seq} next)", prev)
        if row.prev_hash != prev:
            return VerifyReport(False, count, row.seq,
                                f"entry {row.seq} does not link to entry {row.seq - 1} "
                                "(entries deleted or reordered before it)", prev)
        event = Event(actor=row.actor, event=row.event, decision_id=row.decision_id,
                      plan_hash=row.plan_hash, body=row.body)
        if entry_hash(prev, row.seq, row.at, event) != row.hash:
            return VerifyReport(False, count, row.seq,
                                f"entry {row.seq} ({row.event}) was altered: its content does "
                                "not match its hash", prev)
        prev = row.hash
        expected_seq += 1
        count += 1
    with engine.connect() as conn:
        head = conn.execute(select(ledger_head).where(ledger_head.c.id == 1)).first()
    if head is not None and (head.seq != count or head.hash != prev):
        return VerifyReport(False, count, count + 1 if head.seq > count else head.seq,
                            f"the chain ends at entry {count} but the head records entry "
                            f"{head.seq}: entries were removed from the end", prev)
    return VerifyReport(True, count, None, "", prev)
