"""The ledger: an append-only, hash-chained record of every transition.

Each entry's hash covers its own content and the previous entry's hash, so altering,
deleting or reordering any entry breaks the chain from that point on. Appends happen
inside the caller's transaction (so a transition and its ledger entry commit together)
and serialize on the single ``ledger_head`` row, which also records the newest hash so
a tail deleted without touching it is caught too.

What the chain cannot catch on its own: someone who can write the database cuts the
tail off, or rewrites an entry and re-hashes all after it, and sets the head row to
match. ``anchor`` takes an anchor (``_anchor``: the document, its files and posting),
to keep outside the store; ``verify(engine, anchors)`` checks the chain still holds it.

After retention, the oldest entries move into compressed segments (``ledger_segments``,
written by ``Store.archive_ledger``, with the segment index ``ledger_segment_decisions``);
the format (``encode_segment``/``decode_segment``) lives here, and ``verify`` walks the
segments, then the ``ledger`` rows, as one chain, and checks the index against them.

The rows written with the entries (an approval's answer, a decision's status) can be
changed on their own; once the chain verifies, ``verify`` checks them against what the
entries record (``_ledger_rows``) and names each row that disagrees.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from decisionops.agent.errors import LedgerCorrupt
from decisionops.agent.hashing import canonical_json
from decisionops.agent.store._anchor import Anchor, anchor_problem
from decisionops.agent.store._engine import read_connection
from decisionops.agent.store._ledger_batches import Progress
from decisionops.agent.store._ledger_rows import Disagreement, Found, Recorded, disagreements, summary
from decisionops.agent.store._tables import ledger, ledger_head, ledger_segment_decisions, ledger_segments

__all__ = ["GENESIS", "SEGMENT_CODEC", "Disagreement", "Event", "LedgerEntry", "VerifyReport",
           "anchor", "append", "decode_segment", "encode_segment", "entry_hash", "lock_head",
           "snapshot", "verify"]

GENESIS = "0" * 64
SEGMENT_CODEC = "zlib"

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


def append(conn: Connection, events: Iterable[Event], *, at: datetime, entries: bool = True
           ) -> list[LedgerEntry]:
    """Append ``events`` in order within ``conn``'s transaction; the new entries, unless
    the caller has no use for them (``entries=False``: an empty list)."""
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
    for event in events:
        seq += 1
        digest = entry_hash(prev, seq, at, event)
        rows.append({"seq": seq, "at": at, "actor": event.actor, "event": event.event,
                     "decision_id": event.decision_id, "plan_hash": event.plan_hash,
                     "body": event.body, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(_INSERT, rows)
    conn.execute(_SET_HEAD, {"new_seq": seq, "new_hash": prev})
    if not entries:
        return []
    return [LedgerEntry(seq=r["seq"], at=at, prev_hash=r["prev_hash"], hash=r["hash"],
                        **event.model_dump()) for r, event in zip(rows, events, strict=True)]


def lock_head(conn: Connection) -> int:
    """Lock the head row for the rest of ``conn``'s transaction: appends by others queue
    behind it (SQLite: the write transaction already holds the database lock). Returns
    the seq the next entry appended in this transaction gets."""
    return int(conn.execute(_HEAD_FOR_UPDATE).one().seq) + 1


# ---------------------------------------------------------------------- segments


def encode_segment(entries: Sequence[LedgerEntry]) -> tuple[bytes, int]:
    """A segment body: zlib (level 9) of UTF-8 JSON lines, one entry per line, oldest
    first. Returns the body and its uncompressed size. Each line holds what the entry's
    hash covers, and the hash; not ``prev_hash``, which is the hash on the line before
    (the segment row records the first one's)."""
    raw = "".join(json.dumps({"seq": e.seq, "at": _aware(e.at).isoformat(timespec="microseconds"),
                              "actor": e.actor, "event": e.event, "decision_id": e.decision_id,
                              "plan_hash": e.plan_hash, "body": e.body, "hash": e.hash},
                             ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
                  for e in entries).encode("utf-8")
    return zlib.compress(raw, 9), len(raw)


def decode_segment(body: bytes, prev_hash: str, codec: str = SEGMENT_CODEC) -> list[LedgerEntry]:
    """The entries of a segment body, oldest first, each ``prev_hash`` restored from the
    order (the first one's is ``prev_hash``, the segment's). Raises ``ValueError`` naming
    what is wrong when the body does not decompress or parse; whether the entries verify
    is ``verify``'s business."""
    if codec != SEGMENT_CODEC:
        raise ValueError(f"unknown codec {codec!r}")
    try:
        text = zlib.decompress(body).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"its body does not decompress ({exc})") from exc
    # Split on "\n" only: JSON escapes it inside strings, but not U+2028 and the like,
    # which str.splitlines() would also split on.
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    entries = []
    prev = prev_hash
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
            entry = LedgerEntry(seq=item["seq"], at=datetime.fromisoformat(item["at"]),
                                actor=item["actor"], event=item["event"],
                                decision_id=item["decision_id"], plan_hash=item["plan_hash"],
                                body=item["body"], prev_hash=prev, hash=item["hash"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} of its body does not parse ({exc})") from exc
        entries.append(entry)
        prev = entry.hash
    return entries


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose reads all see one state of the store (PostgreSQL:
    REPEATABLE READ; SQLite: one deferred read transaction on the WAL), so segments and
    ledger rows read one after the other agree even while archival moves entries."""
    with read_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    """The first entry that does not verify; None when the problem is not one entry's (the
    segment index, an anchor naming an entry that was rewritten at an unknown point)."""
    problem: str = ""
    head_hash: str = GENESIS
    archived: int = 0
    """Of ``entries``, how many were verified from archived segments."""
    anchors: int = 0
    """How many of the anchors given were checked and hold."""
    disagreements: tuple[Disagreement, ...] = ()
    """Stored rows that say something the ledger does not (the first ``_ledger_rows.KEEP``);
    checked only once the chain verifies."""
    disagreeing: int = 0
    """How many there are in all."""
    approvals: int = 0
    """How many approval rows were checked against the ledger."""
    decisions: int = 0
    """How many decision rows were checked against the ledger."""
    plans: int = 0
    """How many plan versions were checked (their body's hash against the ledger's)."""
    holds: int = 0
    """How many holds were checked against the ledger."""
    users: int = 0
    """How many users were checked against the ledger."""
    outcomes: int = 0
    """How many outcome rows were checked against the ledger."""
    executions: int = 0
    """How many execution rows (tool calls) were checked against the ledger."""
    predictions: int = 0
    """How many predictions' triage verdicts were checked (those not dropped)."""
    rows: int = 0
    """How many stored predictions were checked against their batch's entry."""

    @property
    def chain_ok(self) -> bool:
        """The chain, its index and the anchors given verify (rows may still disagree)."""
        return self.ok or self.disagreeing > 0


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


@dataclass
class _Walk:
    """The chain walked so far: what the next entry must be and link to. ``prev`` None:
    the walk starts past the genesis, at an entry whose link it takes as given."""

    prev: str | None = GENESIS
    expected: int = 1
    count: int = 0
    archived: int = 0
    wanted: frozenset[int] = frozenset()
    seen: dict[int, str] = field(default_factory=dict)
    """The hashes of the ``wanted`` entries (the anchored ones) met on the way."""
    last_at: datetime | None = None
    recorded: Recorded | None = None
    """What the entries record of the rows ``verify`` checks (None: not collected)."""
    headless: bool = False
    """The head row is missing (said once the anchors are checked: they tell whether the
    chain can be trusted to restore it from)."""

    def step(self, seq: int, prev_hash: str, digest: str, at: datetime, event: Event,
             where: str = "") -> None:
        if seq != self.expected:
            what = "missing" if seq > self.expected else "out of order"
            raise _Broken(self.expected, f"entry {self.expected} is {what} (found {seq} next"
                          f"{where})")
        if self.prev is not None and prev_hash != self.prev:
            raise _Broken(seq, f"entry {seq}{where} does not link to entry {seq - 1} "
                          "(entries deleted or reordered before it)")
        if entry_hash(prev_hash, seq, at, event) != digest:
            raise _Broken(seq, f"entry {seq} ({event.event}){where} was altered: its content "
                          "does not match its hash")
        if seq in self.wanted:
            self.seen[seq] = digest
        if self.recorded is not None:
            self.recorded.see(seq, event.event, event.actor, event.decision_id,
                              event.plan_hash, event.body)
        self.prev = digest
        self.last_at = at
        self.expected += 1
        self.count += 1

    @property
    def last(self) -> int:
        return self.expected - 1


def _check_segment(seg: Any, entries: list[LedgerEntry], where: str) -> None:
    if not entries:
        raise _Broken(seg.first_seq, f"{where} holds no entries")
    recorded = {"entries_count": seg.entries_count, "first_seq": seg.first_seq,
                "last_seq": seg.last_seq, "last_hash": seg.last_hash,
                "first_at": seg.first_at, "last_at": seg.last_at}
    actual = {"entries_count": len(entries), "first_seq": entries[0].seq,
              "last_seq": entries[-1].seq, "last_hash": entries[-1].hash,
              "first_at": entries[0].at, "last_at": entries[-1].at}
    wrong = [k for k in recorded if recorded[k] != actual[k]]
    if wrong:
        raise _Broken(seg.first_seq, f"{where}: its record does not match its entries "
                      f"({', '.join(wrong)})")


class _Index:
    """The segment index (``ledger_segment_decisions``), read in the order the segments
    are walked, one segment's decision ids at a time: the index of a big archive is not
    held in memory, and it has no index by segment to look each one up."""

    def __init__(self, conn: Connection, first_seq: int) -> None:
        query = (select(ledger_segment_decisions.c.decision_id, ledger_segments.c.first_seq)
                 .join(ledger_segments,
                       ledger_segments.c.id == ledger_segment_decisions.c.segment_id)
                 .where(ledger_segments.c.last_seq >= first_seq)
                 .order_by(ledger_segments.c.first_seq))
        self._rows = conn.execute(query.execution_options(yield_per=5000))
        self._next = next(self._rows, None)

    def decisions(self, first_seq: int) -> set[str]:
        """The decision ids mapped to the segment that starts at ``first_seq``."""
        out = set()
        while self._next is not None and self._next.first_seq <= first_seq:
            if self._next.first_seq == first_seq:
                out.add(self._next.decision_id)
            self._next = next(self._rows, None)
        return out

    def close(self) -> None:
        self._rows.close()


def _check_index(seg: Any, entries: list[LedgerEntry], mapped: set[str], where: str) -> None:
    """The index must map the segment to exactly the decisions it holds entries of: a
    missing row hides them from that decision's history (``Store.ledger_entries``)."""
    held = {e.decision_id for e in entries if e.decision_id}

    def some(ids: set[str]) -> str:
        first, *more = sorted(ids)
        return f"{first}" + (f" (and {len(more)} more)" if more else "")

    if held - mapped:
        raise _Broken(None, f"{where} holds entries of decision {some(held - mapped)} but the "
                      "segment index does not map it there: that decision's history misses "
                      "them")
    if mapped - held:
        raise _Broken(None, f"the segment index maps decision {some(mapped - held)} to {where}, "
                      "which holds no entry of it")


_ORPHAN = (select(ledger_segment_decisions.c.decision_id, ledger_segment_decisions.c.segment_id)
           .outerjoin(ledger_segments,
                      ledger_segments.c.id == ledger_segment_decisions.c.segment_id)
           .where(ledger_segments.c.id.is_(None))
           .order_by(ledger_segment_decisions.c.segment_id,
                     ledger_segment_decisions.c.decision_id).limit(1))


def _walk_chain(conn: Connection, walk: _Walk) -> None:
    """Walk the chain from ``walk.expected`` on: archived segments first, then the ledger
    rows, then the head row and the index rows of segments that do not exist."""
    start = walk.expected
    segments = conn.execute(select(ledger_segments).where(ledger_segments.c.last_seq >= start)
                            .order_by(ledger_segments.c.first_seq)
                            .execution_options(yield_per=2))
    index = _Index(conn, start)
    try:
        for seg in segments:  # one decompressed at a time
            where = f"archived segment {seg.id} (entries {seg.first_seq} to {seg.last_seq})"
            try:
                entries = decode_segment(seg.body, seg.prev_hash, seg.codec)
            except ValueError as exc:
                raise _Broken(seg.first_seq, f"{where} cannot be read: {exc}") from exc
            for entry in entries:
                if entry.seq >= start:
                    walk.step(entry.seq, entry.prev_hash, entry.hash, entry.at, entry,
                              f" in {where}")
                    walk.archived += 1
            _check_segment(seg, entries, where)
            _check_index(seg, entries, index.decisions(seg.first_seq), where)
    finally:
        segments.close()
        index.close()
    rows = conn.execute(select(ledger).where(ledger.c.seq >= start).order_by(ledger.c.seq)
                        .execution_options(yield_per=2000))
    for row in rows:
        walk.step(row.seq, row.prev_hash, row.hash, row.at,
                  Event(actor=row.actor, event=row.event, decision_id=row.decision_id,
                        plan_hash=row.plan_hash, body=row.body))
    if walk.prev is None:  # a walk from an anchored entry that found nothing
        raise _Broken(start, f"the chain does not reach entry {start} any more: entries "
                      "were removed")
    head = conn.execute(select(ledger_head).where(ledger_head.c.id == 1)).first()
    if head is None:
        walk.headless = True
    else:
        _check_head(head, walk)
    orphan = conn.execute(_ORPHAN).first()
    if orphan is not None:
        raise _Broken(None, f"the segment index maps decision {orphan.decision_id} to archived "
                      f"segment {orphan.segment_id}, which does not exist")


def _check_head(head: Any, walk: _Walk) -> None:
    """Every append locks the head row and moves it to the newest entry: it must name
    the chain's last entry, with its hash."""
    if head.seq > walk.last:
        raise _Broken(walk.last + 1, f"the chain ends at entry {walk.last} but the head row "
                      f"records entry {head.seq}: entries were removed from the end")
    if head.seq < walk.last:
        raise _Broken(head.seq + 1, f"the chain runs to entry {walk.last} but the head row "
                      f"records entry {head.seq}: the head row was set back (or entries were "
                      "appended without it)")
    if head.hash != walk.prev:
        raise _Broken(walk.last, f"the head row records entry {head.seq} with hash {head.hash}, "
                      f"but entry {walk.last}'s hash is {walk.prev}: the head row, or that "
                      "entry (re-hashed), was rewritten")


def _walk_and_check(engine: Engine, walk: _Walk, anchors: Sequence[Anchor], *,
                    full: bool, progress: Progress | None = None) -> Found | None:
    """Walk the chain and check the anchors; then, when ``walk`` collects what the entries
    record, check the rows against it, in the same snapshot."""
    with snapshot(engine) as conn:
        _walk_chain(conn, walk)
        found = anchor_problem(anchors, end=walk.last, hashes=walk.seen,
                               chain=walk.seen.get(1, GENESIS) if full else None)
        if found is not None:
            raise _Broken(*found)
        if walk.headless:
            trust = (f"the {len(anchors)} anchor(s) given hold, so no entry up to entry "
                     f"{max(a.seq for a in anchors)} was cut off with it" if anchors else
                     "check the chain against an anchor (--anchor) before restoring it from "
                     "there: the head row is what shows a tail was cut off")
            raise _Broken(None, "the head row (ledger_head) is missing: every append locks it, "
                          "so nothing can be appended until it is restored; the chain ends at "
                          f"entry {walk.last}, hash {walk.prev}; {trust}")
        return (disagreements(conn, walk.recorded, progress) if walk.recorded is not None
                else None)


def verify(engine: Engine, anchors: Sequence[Anchor] = (), *,
           progress: Progress | None = None) -> VerifyReport:
    """Walk the chain, archived segments first, then the ledger rows; report the first
    entry that does not verify, or the first segment the segment index is wrong about;
    then check each of ``anchors`` (``_anchor``): the chain must still reach its entry,
    with its hash. Once all that holds, check the approval, decision, outcome, execution,
    triage and prediction rows against what the entries record (``_ledger_rows``,
    ``_ledger_value``, ``_ledger_batches``) and report every row that disagrees.

    Without anchors, a chain cut short or rewritten and re-hashed from some entry on, by
    someone who also rewrites the head row, verifies: the chain only proves itself.
    ``progress`` hears how many stored predictions were checked (the long part)."""
    walk = _Walk(wanted=frozenset({1, *(a.seq for a in anchors)}), recorded=Recorded())
    try:
        found = _walk_and_check(engine, walk, anchors, full=True, progress=progress)
    except _Broken as broken:
        return VerifyReport(False, walk.count, broken.seq, broken.problem, walk.prev or GENESIS,
                            archived=walk.archived)
    assert found is not None
    problem = ""
    if found.count:
        more = f"; and {found.count - 1} more" if found.count > 1 else ""
        problem = f"{summary(found.count)}: {found.kept[0]}{more}"
    return VerifyReport(not found.count, walk.count, None, problem, walk.prev or GENESIS,
                        archived=walk.archived, anchors=len(anchors),
                        disagreements=tuple(found.kept), disagreeing=found.count,
                        approvals=found.approvals, decisions=found.decisions,
                        plans=found.plans, holds=found.holds, users=found.users,
                        outcomes=found.outcomes, executions=found.executions,
                        predictions=found.predictions, rows=found.rows)


def anchor(engine: Engine, *, since: Anchor | None = None) -> Anchor:
    """An anchor of the head of the chain as the chain itself says it: its last entry,
    once everything ``verify`` checks of the chain holds (not the rows: an anchor vouches
    for the record they are checked against, and a forged row must not stop it). With
    ``since`` (an anchor of this ledger that you trust, e.g. the last one published),
    only the entries from ``since.seq`` on are walked, and ``since`` must still hold.
    Raises ``LedgerCorrupt`` when the chain does not verify: an anchor of a broken chain
    would vouch for it."""
    start = since if since is not None and since.seq > 0 else None
    anchors = [start] if start is not None else []
    walk = _Walk(wanted=frozenset({1, *(a.seq for a in anchors)}))
    if start is not None:
        walk.prev, walk.expected = None, start.seq
    try:
        _walk_and_check(engine, walk, anchors, full=start is None)
    except _Broken as broken:
        raise LedgerCorrupt(f"ledger not anchored: {broken.problem}; see decisionops ledger "
                            "verify", seq=broken.seq) from None
    chain = start.chain if start is not None else walk.seen.get(1, GENESIS)
    return Anchor(seq=walk.last, hash=walk.prev or GENESIS, at=walk.last_at, chain=chain,
                  exported_at=datetime.now(UTC))
