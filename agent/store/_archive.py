"""The ledger as the store reads and keeps it (``Store.ledger``): entries of a decision
or of the whole chain, search, entries that are not part of another write (refusals),
and archival. After retention, the oldest run of ledger entries moves out of the
``ledger`` table into one compressed segment (``ledger_segments``), with a map of which
segments hold which decision's entries; the readers merge segments back in
(``archived_entries``, ``search_filter``). The hash chain, the segment format and
``verify`` are in ``ledger``.

What is archived is always a prefix of the chain, and never an entry that live work
still reads from the ``ledger`` table (the approvals of an active decision, who ingested
its prediction): see ``_live_floor``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select

from decisionops.agent.errors import LedgerCorrupt
from decisionops.agent.models import DecisionStatus, utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo
from decisionops.agent.store.ledger import (
    GENESIS,
    SEGMENT_CODEC,
    Event,
    LedgerEntry,
    decode_segment,
    encode_segment,
    lock_head,
    snapshot,
)

__all__ = ["LedgerRepo", "archived_entries", "archived_entry", "search_filter"]

_LIVE = [s.value for s in DecisionStatus if not s.terminal]
_SEGMENTS, _MAP = t.ledger_segments, t.ledger_segment_decisions


class LedgerRepo(Repo):
    def entries(self, decision_id: str | None = None, limit: int = 1000) -> list[LedgerEntry]:
        """Oldest first: the archived entries (segments), then the ``ledger`` rows."""
        query = select(t.ledger).order_by(t.ledger.c.seq)
        if decision_id:
            query = query.where(t.ledger.c.decision_id == decision_id)
        with snapshot(self.engine) as conn:
            entries = list(islice(archived_entries(conn, decision_id=decision_id or None), limit))
            if len(entries) < limit:
                entries += [LedgerEntry.model_validate(dict(r._mapping))
                            for r in conn.execute(query.limit(limit - len(entries)))]
        return entries

    def search(self, *, text: str | None = None, event: str | None = None,
               actor: str | None = None, limit: int = 50) -> list[LedgerEntry]:
        """Newest matching ledger entries first: ``text`` is a decision id or part of an
        event's name, ``event`` the start of one, both as written (``%`` and ``_`` are
        not wildcards), ignoring case."""
        query = select(t.ledger).order_by(t.ledger.c.seq.desc()).limit(limit)
        if event:
            query = query.where(t.ledger.c.event.istartswith(event, autoescape=True))
        if actor:
            query = query.where(t.ledger.c.actor == actor)
        if text:
            query = query.where(or_(t.ledger.c.decision_id == text,
                                    t.ledger.c.event.icontains(text, autoescape=True)))
        with snapshot(self.engine) as conn:
            found = [LedgerEntry.model_validate(dict(r._mapping)) for r in conn.execute(query)]
            if len(found) < limit:  # then the archived entries, newest segment first
                matches = search_filter(text=text, event=event, actor=actor)
                found += islice((e for e in archived_entries(conn, newest_first=True)
                                 if matches(e)), limit - len(found))
        return found

    def append(self, events: Sequence[Event]) -> None:
        """Append entries that are not part of another write (refusals, for instance)."""
        if not events:
            return
        with self.transaction() as conn:
            self.record(conn, events, utcnow())

    def held_back(self, before: datetime) -> str | None:
        """What keeps entries older than ``before`` from being archived: the oldest live
        work that still reads them (an unfinished decision, or a prediction that may yet
        get one), or None when nothing does."""
        p, d = t.predictions, t.decisions
        with self.reading() as conn:
            floor = _live_floor(conn)
            if floor is None or floor >= min(before, utcnow()):
                return None
            row = conn.execute(select(d.c.id, d.c.status, p.c.ingested_at)
                               .join(p, d.c.prediction_id == p.c.id)
                               .where(d.c.status.in_(_LIVE), p.c.ingested_at == floor)
                               .limit(1)).first()
            if row is not None:
                return (f"decision {row.id} ({row.status}, its prediction ingested "
                        f"{row.ingested_at:%Y-%m-%d %H:%M}Z) is unfinished")
            pid = conn.scalar(select(p.c.id).where(p.c.ingested_at == floor).limit(1))
            return (f"prediction {pid} (ingested {floor:%Y-%m-%d %H:%M}Z) may still get a "
                    "decision (untriaged, or waiting for a person in the queue)")

    def archive(self, before: datetime, *, max_entries: int = 10_000,
                       min_entries: int = 1, partial_if_before: datetime | None = None
                       ) -> dict[str, int]:
        """Archive one segment: the oldest ledger entries, in order, up to ``max_entries``,
        stopping at the first entry at or after the cutoff (``before``, or earlier when
        live work still reads entries from then). A run shorter than ``min_entries`` is
        left for later unless its oldest entry is older than ``partial_if_before``.

        Returns ``segments`` (0 or 1), ``entries``, ``raw_bytes`` and ``stored_bytes``
        (and ``first_seq``/``last_seq`` of a segment written). Raises ``LedgerCorrupt``,
        archiving nothing, when the rows do not continue the archived chain (an entry
        missing, a ``prev_hash`` that is not the hash before it): a segment does not keep
        ``prev_hash``, so a break there would be lost, not baked in. An altered entry is
        archived as it is, its stored hash with it, and ``verify`` names it all the same.
        """
        nothing = {"segments": 0, "entries": 0, "raw_bytes": 0, "stored_bytes": 0}

        def enough(run: list[LedgerEntry]) -> bool:
            return bool(run) and (len(run) >= min_entries or (
                partial_if_before is not None and run[0].at < partial_if_before))

        # Read and compress before taking the head lock, which every append waits for:
        # entries never change, and only archival (one pass at a time) removes them.
        with snapshot(self.engine) as conn:
            cutoff = _due_cutoff(conn, before, min_entries, partial_if_before)
            entries = _due(conn, cutoff, max_entries) if cutoff is not None else []
        if not enough(entries):
            return nothing
        body, raw_bytes = encode_segment(entries)
        try:
            with self.transaction() as conn:
                # Appends wait until this commits, so none can slip an entry of a
                # prediction the live floor did not see yet under the cutoff (and any made
                # later is timed after ``now``, past the cutoff).
                lock_head(conn)
                if conn.scalar(_LAST_ARCHIVED) != entries[0].seq - 1:
                    raise _Taken
                cutoff = _cutoff(conn, before)
                if entries[-1].at >= cutoff:  # live work moved the floor back meanwhile
                    entries = [e for e in entries if e.at < cutoff]
                    if not enough(entries):
                        return nothing
                    body, raw_bytes = encode_segment(entries)
                first, last = entries[0], entries[-1]
                segment_id = conn.execute(insert(_SEGMENTS).values(
                    first_seq=first.seq, last_seq=last.seq, entries_count=len(entries),
                    first_at=first.at, last_at=last.at, prev_hash=first.prev_hash,
                    last_hash=last.hash, codec=SEGMENT_CODEC, body=body,
                    raw_bytes=raw_bytes, created_at=utcnow())).inserted_primary_key[0]
                decisions = sorted({e.decision_id for e in entries if e.decision_id})
                if decisions:
                    conn.execute(insert(_MAP), [{"decision_id": d, "segment_id": segment_id}
                                                for d in decisions])
                deleted = conn.execute(delete(t.ledger).where(
                    t.ledger.c.seq.between(first.seq, last.seq))).rowcount
                if deleted != len(entries):
                    raise _Taken  # another archival pass moved them first: roll back
        except _Taken:
            return nothing
        return {"segments": 1, "entries": len(entries), "raw_bytes": raw_bytes,
                "stored_bytes": len(body), "first_seq": first.seq, "last_seq": last.seq}


_OLDEST_AT = select(t.ledger.c.at).order_by(t.ledger.c.seq).limit(1)
_LAST_ARCHIVED = select(func.coalesce(func.max(_SEGMENTS.c.last_seq), 0))


class _Taken(Exception):
    """The rows read for a segment were archived by another pass in the meantime."""


def _due_cutoff(conn: Connection, before: datetime, min_entries: int,
                partial_if_before: datetime | None) -> datetime | None:
    """The cutoff (see ``_cutoff``) when a segment is due, else None; found without
    reading the entries, as the loop asks on every tick."""
    oldest = conn.scalar(_OLDEST_AT)
    if oldest is None or oldest >= min(before, utcnow()):
        return None
    last = oldest
    if min_entries > 1 and not (partial_if_before is not None and oldest < partial_if_before):
        # Entry times never run backwards along the chain: if the min_entries-th oldest
        # is due, so are all before it.
        last = conn.scalar(_OLDEST_AT.offset(min_entries - 1))
        if last is None or last >= min(before, utcnow()):
            return None
    # Last, as it is the costly part: what live work still reads.
    cutoff = _cutoff(conn, before)
    return cutoff if last < cutoff else None


def _cutoff(conn: Connection, before: datetime) -> datetime:
    """``before``, or earlier where live work still reads entries (``_live_floor``)."""
    cutoff = min(before, utcnow())
    floor = _live_floor(conn)
    return cutoff if floor is None else min(cutoff, floor)


def _live_floor(conn: Connection) -> datetime | None:
    """The earliest ingestion time of a prediction that live work may still read ledger
    entries of: its decision is not finished, or it has none yet but may get one
    (untriaged, triaged ``act``, or ``needs_human``: a person may pick a playbook or
    supply its value, and four-eyes then reads who submitted it). Every entry about such
    a prediction or its decision was appended at or after that time. Holdout predictions
    (``hold``) never get a decision, and an operator hold is triaged ``drop``: neither
    keeps entries here."""
    p, d = t.predictions, t.decisions
    queries = [
        select(func.min(p.c.ingested_at)).join(d, d.c.prediction_id == p.c.id)
        .where(d.c.status.in_(_LIVE)),
        select(func.min(p.c.ingested_at)).where(p.c.triaged_at.is_(None)),
        select(func.min(p.c.ingested_at)).where(t.UNSTARTED_ACT),
        select(func.min(p.c.ingested_at)).where(t.UNSTARTED_HUMAN),
    ]
    times = [at for at in (conn.scalar(q) for q in queries) if at is not None]
    return min(times, default=None)


def _due(conn: Connection, cutoff: datetime, limit: int) -> list[LedgerEntry]:
    """The oldest ledger rows before ``cutoff``, as entries, checked to continue the
    archived chain. Content hashes are ``verify``'s to check: this runs with the head
    locked, and an altered entry stays just as detectable in a segment."""
    last = conn.execute(select(_SEGMENTS.c.last_seq, _SEGMENTS.c.last_hash)
                        .order_by(_SEGMENTS.c.last_seq.desc()).limit(1)).first()
    expected, prev = (last.last_seq + 1, last.last_hash) if last else (1, GENESIS)
    entries: list[LedgerEntry] = []
    rows = conn.execute(select(t.ledger).order_by(t.ledger.c.seq).limit(limit)
                        .execution_options(yield_per=1000))
    try:
        for row in rows:
            # Entry times never run backwards along the chain (``append``), so this is
            # the end of what is due.
            if row.at >= cutoff:
                break
            entry = LedgerEntry.model_validate(dict(row._mapping))
            problem = None
            if entry.seq != expected:
                problem = f"entry {expected} is missing (found {entry.seq} next)"
            elif entry.prev_hash != prev:
                problem = f"entry {entry.seq} does not link to entry {entry.seq - 1}"
            if problem is not None:
                raise LedgerCorrupt(f"ledger not archived: {problem}; see decisionops ledger "
                                    "verify", seq=min(expected, entry.seq))
            entries.append(entry)
            expected, prev = entry.seq + 1, entry.hash
    finally:
        rows.close()
    return entries


# ---------------------------------------------------------------------- reading


def _read(segment: Any) -> list[LedgerEntry]:
    try:
        return decode_segment(segment.body, segment.prev_hash, segment.codec)
    except ValueError as exc:
        raise LedgerCorrupt(f"archived ledger segment {segment.id} (entries {segment.first_seq} "
                            f"to {segment.last_seq}) cannot be read: {exc}; see decisionops "
                            "ledger verify", seq=segment.first_seq) from exc


def archived_entries(conn: Connection, *, decision_id: str | None = None,
                     newest_first: bool = False) -> Iterator[LedgerEntry]:
    """Archived entries (of one decision: only the segments that hold some are read),
    oldest or newest first, decompressing one segment at a time as the caller reads on.
    Use a ``ledger.snapshot`` connection to read the ``ledger`` rows alongside."""
    query = select(_SEGMENTS.c.id, _SEGMENTS.c.first_seq, _SEGMENTS.c.last_seq,
                   _SEGMENTS.c.prev_hash, _SEGMENTS.c.codec, _SEGMENTS.c.body)
    if decision_id is not None:
        query = query.join(_MAP, _MAP.c.segment_id == _SEGMENTS.c.id).where(
            _MAP.c.decision_id == decision_id)
    query = query.order_by(_SEGMENTS.c.first_seq.desc() if newest_first
                           else _SEGMENTS.c.first_seq)
    segments = conn.execute(query.execution_options(yield_per=2))
    try:
        for segment in segments:
            entries = _read(segment)
            for entry in reversed(entries) if newest_first else entries:
                if decision_id is None or entry.decision_id == decision_id:
                    yield entry
    finally:
        segments.close()


def archived_entry(conn: Connection, seq: int) -> LedgerEntry | None:
    """Entry ``seq``, from the ``ledger`` table or else the segment that holds it."""
    row = conn.execute(select(t.ledger).where(t.ledger.c.seq == seq)).first()
    if row is not None:
        return LedgerEntry.model_validate(dict(row._mapping))
    segment = conn.execute(select(_SEGMENTS).where(_SEGMENTS.c.first_seq <= seq,
                                                   _SEGMENTS.c.last_seq >= seq)).first()
    if segment is None:
        return None
    return next((e for e in _read(segment) if e.seq == seq), None)


def search_filter(*, text: str | None, event: str | None, actor: str | None
                  ) -> Callable[[LedgerEntry], bool]:
    """The filter of ``LedgerRepo.search`` for archived entries: the same matches its
    SQL finds among the ``ledger`` rows (the text as written, ignoring case)."""
    prefix = event.lower() if event else None
    part = text.lower() if text else None

    def matches(entry: LedgerEntry) -> bool:
        if prefix is not None and not entry.event.lower().startswith(prefix):
            return False
        if actor and entry.actor != actor:
            return False
        return part is None or entry.decision_id == text or part in entry.event.lower()

    return matches
