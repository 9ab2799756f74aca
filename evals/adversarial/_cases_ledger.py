"""Finding 11: the ledger tampered with by someone who can write the database. A chain
cut short with its head row rewritten, or rewritten and re-hashed from an approval on,
still verifies by itself; an anchor taken before (kept outside the store) catches both.
The tampering is done on a copy of the store, so the case's own history stays what the
audit judges."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import Connection, delete, select, update

from decisionops.agent.store import Event, Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import anchor, entry_hash, verify
from decisionops.evals.adversarial._arena import Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World

__all__ = ["CASES"]

CASES = CaseList()


def _truncate(conn: Connection, keep: int) -> None:
    conn.execute(delete(t.ledger).where(t.ledger.c.seq > keep))
    last = conn.scalar(select(t.ledger.c.hash).where(t.ledger.c.seq == keep))
    conn.execute(update(t.ledger_head).values(seq=keep, hash=last))


def _rehash_from(conn: Connection, seq: int, **changes: object) -> None:
    """Change entry ``seq``, then re-hash it and every later entry and the head row."""
    rows = conn.execute(select(t.ledger).where(t.ledger.c.seq >= seq)
                        .order_by(t.ledger.c.seq)).all()
    prev = rows[0].prev_hash
    for row in rows:
        values = dict(row._mapping)
        if row.seq == seq:
            values.update(changes)
        event = Event(actor=values["actor"], event=values["event"],
                      decision_id=values["decision_id"], plan_hash=values["plan_hash"],
                      body=values["body"])
        digest = entry_hash(prev, row.seq, values["at"], event)
        conn.execute(update(t.ledger).where(t.ledger.c.seq == row.seq).values(
            actor=values["actor"], body=values["body"], prev_hash=prev, hash=digest))
        prev = digest
    conn.execute(update(t.ledger_head).values(hash=prev))


def _tampered(arena: Arena, name: str, tamper: Callable[[Connection], None]) -> Store:
    source = Path(arena.settings.resolved_database_url.removeprefix("sqlite:///"))
    copy = arena.folder / f"{name}.sqlite"
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(copy)) as target:
        live.backup(target)  # the whole database, write-ahead log included
    store = Store.open(f"sqlite:///{copy}")
    with store.transaction() as conn:
        tamper(conn)
    return store


@CASES.add("ledger-tamper", "ledger",
           "the ledger's tail is cut and its head row rewritten; an approval is rewritten "
           "and the chain re-hashed; a byte is flipped")
def _tamper(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    engine = arena.rt.store.engine
    kept = anchor(engine)  # published outside the store before the attack
    entries = arena.rt.store.ledger.entries(limit=100_000)
    approval = next(e for e in entries if e.event == "approval.approved"
                    and e.actor == "dana@finance")

    cut = _tampered(arena, "cut", lambda c: _truncate(c, kept.seq - 5))
    rewritten = _tampered(arena, "rewritten", lambda c: _rehash_from(
        c, approval.seq, actor="mallory@finance",
        body={**approval.body, "user": "mallory@finance"}))
    flipped = _tampered(arena, "flipped", lambda c: c.execute(
        update(t.ledger).where(t.ledger.c.seq == approval.seq).values(actor="mallory@finance")))
    try:
        for label, store in (("cut", cut), ("rewritten", rewritten)):
            alone, anchored = verify(store.engine), verify(store.engine, [kept])
            # A chain re-hashed by someone who can write the database is consistent; what
            # gives it away without an anchor is the rows written with it, which it no
            # longer agrees with (a completed decision whose ledger ends executing).
            arena.check(alone.chain_ok, f"{label}: the chain alone was expected to verify "
                        f"({alone.problem})")
            if not alone.ok:
                arena.note(f"{label}: caught without the anchor, by the rows: "
                           f"{alone.problem[:120]}")
            arena.check(not anchored.ok, f"{label}: the anchor did not catch the tampering")
            arena.note(f"{label}: caught with the anchor: {anchored.problem[:120]}")
        broken = verify(flipped.engine)
        arena.check(not broken.ok and broken.first_bad_seq == approval.seq,
                    f"flipped byte: verify says {broken.ok} at {broken.first_bad_seq}")
    finally:
        for store in (cut, rewritten, flipped):
            store.close()
    arena.check(verify(engine, [kept]).ok, "the untouched ledger no longer verifies")
