"""Predictions: accepting them in batches (idempotent by id), triage verdicts (row by
row, or a whole rule at once in SQL), and the reads that triage, claiming and the ops
views need.

A batch accepted is one ledger entry, ``predictions.ingested``, whose ``root`` is the
Merkle root (``agent.hashing``) over the row hashes of its new predictions in order;
each row keeps the entry's seq (``ingest_seq``), so ``proof`` can show any one row is in
it. A row hash is ``merkle_leaf`` of the prediction's JSON (``model_dump_json``), which
reading the row back reproduces; the leaves are in id order (code points). A rule that
triage applies in bulk is one ``predictions.triaged`` entry over the ids it dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    Float,
    Integer,
    Numeric,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)

from decisionops.agent.errors import NotFoundError
from decisionops.agent.hashing import merkle_check, merkle_leaf, merkle_path, merkle_root
from decisionops.agent.models import Prediction, TriageAction, TriagedRow, TriageVerdict, utcnow
from decisionops.agent.sources import PredictionRow, same_content
from decisionops.agent.store import _tables as t
from decisionops.agent.store._archive import archived_entry
from decisionops.agent.store._db import Repo
from decisionops.agent.store._ledger_batches import COPIED, STORED_TEXT, copies_differ, stored_leaf
from decisionops.agent.store._notify import WAKE, notify
from decisionops.agent.store.ledger import Event, LedgerEntry, entry_hash, lock_head
from decisionops.agent.triage import Acted, BulkDrop, article

__all__ = ["IngestResult", "PredictionRepo", "RowProof", "row_leaf"]

_CHUNK = 500
_PREDICTION_ROW = select(t.predictions).where(t.predictions.c.id == bindparam("id"))
_P = t.predictions
_COLUMNS = ("id", "kind", "entity_type", "entity_id", "model", "model_version", "score",
            "value_at_stake", "observed_at", "payload", "source", "ingested_at", "expected_value",
            "ingest_seq")
# The driver's own executemany: a million rows through the ORM-free Core still cost more
# in parameter processing than SQLite takes to store them. The payload arrives as the
# JSON text already made for its row hash (serialized once); times as the Time type
# binds them (converted once per distinct value).
_INSERT = {
    "sqlite": f"INSERT INTO predictions ({', '.join(_COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
    "postgresql": f"INSERT INTO predictions ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('%s::json' if c == 'payload' else '%s' for c in _COLUMNS)})",
}
_by_id = itemgetter(0)
"""A ``PredictionRow``'s id."""
_UNTRIAGED = _P.c.triaged_at.is_(None)
_DECIDED = (TriageAction.ACT, TriageAction.HOLD)
"""What the loop decides on a reading: once, so queued copies of it are superseded."""
_ORDER = (_P.c.observed_at, _P.c.id)


def _kind() -> Any:
    """``kind`` as an expression, so that SQLite's planner walks the untriaged rows by
    one of their partial indexes, not all rows of a kind by ``ix_predictions_entity``."""
    return _P.c.kind.op("||")(literal_column("''"))



_RECORD = (update(_P).where(_P.c.id == bindparam("pid"))
           .values(triage_action=bindparam("action"), triage_reason=bindparam("reason"),
                   triage_detail=bindparam("detail"), playbook=bindparam("playbook"),
                   expected_value=bindparam("ev"), triaged_at=bindparam("now"),
                   value_at_stake_supplied=func.coalesce(bindparam("vas", type_=Float),
                                                         _P.c.value_at_stake_supplied)))

def _screened(window: datetime | None) -> list[Any]:
    where = [_UNTRIAGED]
    if window is not None:
        where.append(_P.c.ingested_at <= bindparam("window", window, type_=t.Time))
    return where


def _tie(dialect: str) -> Any:
    """The score is within a hair of a tie at two decimals, where SQL's rounding and
    Python's (``f"{score:.2f}"``, the exact binary value, ties to even) may differ:
    its detail is written from Python."""
    hundredths = _P.c.score * 100
    whole = func.floor(hundredths) if dialect == "postgresql" else cast(hundredths, Integer)
    return func.abs(hundredths - whole - 0.5) < 1e-6


def _two_decimals(dialect: str) -> Any:
    if dialect == "postgresql":
        return cast(func.round(cast(_P.c.score, Numeric), 2), Text)
    return func.printf("%.2f", _P.c.score)


def row_leaf(prediction: Prediction) -> bytes:
    """The hash of one accepted row: a Merkle leaf over the prediction's JSON."""
    return PredictionRow.of(prediction).leaf


@dataclass
class IngestResult:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unknown_kinds: list[str] = field(default_factory=list)
    """Kinds no playbook answers (ingested; triage sends them to a person)."""
    needs: dict[str, int] = field(default_factory=dict)
    """How many of the rows lack what triage needs (``agent.triage.gaps``)."""
    seq: int | None = None
    """The ledger entry of this batch (None when nothing was new)."""
    stored_by: dict[str, int | None] = field(default_factory=dict)
    """For each duplicate: the ledger entry of the batch that stored it (None for rows
    stored before batch entries)."""
    changed: list[str] = field(default_factory=list)
    """The duplicates whose content differs from the stored prediction's (left as stored)."""


@dataclass(frozen=True)
class RowProof:
    """That one stored prediction is a row of the batch its ledger entry commits to."""

    prediction_id: str
    seq: int
    """The batch's ledger entry."""
    entry_hash: str
    index: int
    """The row's place among the batch's new rows (0-based)."""
    rows: int
    leaf: str
    path: list[tuple[str, str]]
    root: str
    """The root the entry records."""
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"prediction_id": self.prediction_id, "ok": self.ok, "seq": self.seq,
                "entry_hash": self.entry_hash, "index": self.index, "rows": self.rows,
                "leaf": self.leaf, "path": [list(p) for p in self.path], "root": self.root,
                "problems": self.problems}


class PredictionRepo(Repo):
    def __init__(self, db: Any) -> None:
        super().__init__(db)
        self._times: dict[str, _TimeBinder] = {}
        """Times as the driver binds them, kept across the batches of a stream (a nightly
        file's rows share a few thousand)."""

    def ingest(self, rows: Sequence[PredictionRow | Prediction], *, source: str, actor: str,
               durable: bool = True) -> IngestResult:
        """Insert the rows (``agent.sources.prepare``; a prediction is made its row here)
        whose ids are new, in one transaction with one ledger entry committing to every
        new row (none when nothing is new). ``durable``: synced to disk before it returns;
        a stream of batches syncs its last one (on SQLite that sync covers the batches
        before it)."""
        rows = [r if type(r) is PredictionRow else PredictionRow.of(r) for r in rows]
        result = IngestResult()
        now = utcnow()
        with self.transaction(durable=durable) as conn:
            ids = [r.id for r in rows]
            stored: dict[str, int | None] = {}
            payloads: dict[str, Any] = {}
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            for i in range(0, len(ids), _CHUNK):
                part = ids[i:i + _CHUNK]
                for pid, seq, payload in conn.exec_driver_sql(
                        f"SELECT id, ingest_seq, payload FROM predictions WHERE id IN "
                        f"({', '.join(mark for _ in part)})", tuple(part)):
                    stored[pid], payloads[pid] = seq, payload
            fresh = []
            for r in rows:
                if r.id in stored:
                    result.duplicates.append(r.id)
                    result.stored_by[r.id] = stored[r.id]
                    if r.id in payloads and not same_content(payloads[r.id], r):
                        result.changed.append(r.id)
                    continue
                stored[r.id] = None
                fresh.append(r)
            if not fresh:
                return result
            time = self._times.get(conn.dialect.name)
            if time is None:
                time = self._times[conn.dialect.name] = _TimeBinder(conn)
            seq = self.insert_new(conn, fresh, source=source, actor=actor, now=now, time=time)
            notify(conn, WAKE)  # new work for every worker
            result.new = [r.id for r in fresh]
            result.seq = seq
        return result

    def insert_new(self, conn: Any, rows: Sequence[PredictionRow], *, source: str, actor: str,
                   now: datetime, time: _TimeBinder | None = None) -> int:
        """Insert ``rows`` (ids not stored yet) in the caller's transaction with their
        batch's ledger entry, ``predictions.ingested``, whose root commits to every row;
        its seq. The one way a prediction is stored: intake, and a follow-up a person
        plans again from the queue (``PredictionViewRepo.replan``)."""
        time = time or _TimeBinder(conn)
        seq = lock_head(conn)
        ordered = sorted(rows, key=_by_id)  # leaves in id order: any reader rebuilds it
        at = time(now)
        conn.exec_driver_sql(_INSERT[conn.dialect.name], [
            (r.id, r.kind, r.entity_type, r.entity_id, r.model, r.model_version, r.score,
             r.value_at_stake, time(r.observed_at), r.payload, source, at,
             r.expected_value, seq) for r in ordered])
        (entry,) = self.record(conn, [Event(
            actor=actor, event="predictions.ingested",
            body={"source": source, "rows": len(ordered),
                  "root": merkle_root([r.leaf for r in ordered])})], now)
        assert entry.seq == seq, "the ledger head moved under its lock"
        return seq

    def proof(self, prediction_id: str) -> RowProof:
        """Prove the stored prediction against its batch's ledger entry: the row hash,
        recomputed from the stored row, with the path to the root the entry records; the
        entry's own hash is checked too (the chain around it is ``ledger verify``'s)."""
        with self.reading() as conn:
            seq = conn.scalar(select(_P.c.ingest_seq).where(_P.c.id == prediction_id))
            if seq is None:
                if conn.scalar(select(_P.c.id).where(_P.c.id == prediction_id)) is None:
                    raise NotFoundError(f"no prediction {prediction_id!r}", field="prediction_id")
                raise NotFoundError(f"prediction {prediction_id!r} was stored before batch "
                                    "entries; its own prediction.ingested entry records it",
                                    field="prediction_id")
            batch = sorted(conn.execute(select(_P.c.id, STORED_TEXT)
                                        .where(_P.c.ingest_seq == seq)).all())
            columns = conn.execute(select(*(_P.c[name] for name in COPIED))
                                   .where(_P.c.id == prediction_id)).one()._mapping
            entry = archived_entry(conn, seq)
        proof = _prove(prediction_id, seq, batch, entry)
        try:
            proven = Prediction.model_validate_json(dict(batch)[prediction_id])
        except ValidationError:  # accepted under earlier rules: its hash covers it
            return proof
        copies = _copies_differ(proven, columns, proven=proof.ok)
        return replace(proof, problems=proof.problems + copies) if copies else proof
    def get(self, prediction_id: str) -> Prediction:
        with self.reading() as conn:
            payload = conn.scalar(select(t.predictions.c.payload)
                                  .where(t.predictions.c.id == prediction_id))
        if payload is None:
            raise NotFoundError(f"no prediction {prediction_id!r}", field="prediction_id")
        return Prediction.model_validate(payload)

    def row(self, prediction_id: str) -> dict[str, Any] | None:
        """The stored row: the prediction's columns with its triage verdict."""
        with self.reading() as conn:
            row = conn.execute(_PREDICTION_ROW, {"id": prediction_id}).first()
        return dict(row._mapping) if row else None

    # ------------------------------------------------------------------ triage

    def screening_window(self, limit: int) -> datetime | None:
        """The ingestion time that bounds the next ``limit`` untriaged predictions in the
        order they were stored (None when no more than ``limit`` wait): the rows bulk
        rules screen together, neighbours on disk."""
        with self.reading() as conn:
            return conn.scalar(select(_P.c.ingested_at).where(_UNTRIAGED)
                               .order_by(_P.c.ingested_at).offset(limit - 1).limit(1))

    def untriaged_kinds(self, window: datetime | None) -> list[str]:
        with self.reading() as conn:
            return sorted(conn.scalars(select(_kind()).distinct().where(*_screened(window))))

    def untriaged(self, limit: int) -> list[Prediction]:
        """The ``limit`` untriaged predictions observed first (then by id). Run once the
        bulk rules have screened the backlog: what is left to sort is what they did not
        drop."""
        with self.reading() as conn:
            payloads = conn.scalars(select(_P.c.payload).where(_UNTRIAGED).order_by(*_ORDER)
                                    .limit(limit))
            return [Prediction.model_validate(p) for p in payloads]

    def drop_in_bulk(self, drops: Sequence[BulkDrop], *, window: datetime | None, actor: str
                     ) -> list[TriagedRow]:
        """Apply rules that need no row but its own columns to the untriaged predictions
        stored up to ``window``, in SQL, in one transaction: each drop is one UPDATE and
        one ``predictions.triaged`` ledger entry whose root covers the ids it verdicted
        (a drop, or needs_human for a kind no playbook answers).
        These verdicts do not depend on other rows, so storage order serves (a chunk in
        triage order would touch a page per row). A score at a rounding tie of the
        detail's two decimals gets its detail from Python (``f"{score:.2f}"``), not SQL.
        Left for the caller (row by row): rows stored before ``expected_value`` was kept
        at intake."""
        now = utcnow()
        verdicts: list[TriagedRow] = []
        events: list[Event] = []
        with self.transaction() as conn:
            for drop in drops:
                where = [*_screened(window), _kind() == drop.kind,
                         or_(_P.c.value_at_stake.is_(None), _P.c.expected_value.is_not(None))]
                values = {"triage_action": drop.action.value, "triage_reason": drop.reason,
                          "playbook": drop.playbook, "triaged_at": now}
                returning = (_P.c.id, _P.c.triage_detail, _P.c.expected_value)
                if drop.below is None:
                    rows = list(conn.execute(update(_P).where(*where).values(
                        **values, triage_detail=drop.detail).returning(*returning)))
                else:
                    where.append(_P.c.score < drop.below)
                    tie = _tie(conn.dialect.name)
                    rows = list(conn.execute(update(_P).where(*where, ~tie).values(
                        **values, triage_detail=literal("score ")
                        + _two_decimals(conn.dialect.name) + literal(drop.detail))
                        .returning(*returning)))
                    ties = [(i, f"score {score:.2f}{drop.detail}", ev) for i, score, ev in
                            conn.execute(select(_P.c.id, _P.c.score, _P.c.expected_value)
                                         .where(*where, tie))]
                    if ties:
                        conn.execute(update(_P).where(_P.c.id == bindparam("pid"))
                                     .values(**values, triage_detail=bindparam("detail")),
                                     [{"pid": i, "detail": d} for i, d, _ in ties])
                        rows += ties
                if not rows:
                    continue
                rows.sort(key=itemgetter(0))
                verdicts += [TriagedRow(i, drop.action, drop.reason, d, drop.playbook, ev)
                             for i, d, ev in rows]
                events.append(Event(actor=actor, event="predictions.triaged", body={
                    "action": drop.action.value, "reason": drop.reason,
                    "kind": drop.kind, "playbook": drop.playbook, "rows": len(rows),
                    "root": merkle_root([merkle_leaf(i.encode("utf-8")) for i, _, _ in rows])}))
            self.record(conn, events, now)
        return verdicts

    def last_acted(self, kind: str, entity_ids: Iterable[str], *,
                   besides: Sequence[str] = ()) -> dict[str, Acted]:
        """When the loop last decided to act on each entity for ``kind`` (the triage of
        the prediction it acted on), and the newest moment observed among the predictions
        it acted on there and among those it held out, leaving out ``besides``."""
        acted = _P.c.triage_action == TriageAction.ACT.value
        held = _P.c.triage_action == TriageAction.HOLD.value
        where = [or_(acted, held)]
        if besides:
            where.append(_P.c.id.not_in(list(besides)))
        columns = (case((acted, _P.c.triaged_at)), case((acted, _P.c.observed_at)),
                   case((held, _P.c.observed_at)))
        return {entity: Acted(*newest) for entity, newest in self._newest(
            kind, entity_ids, *where, columns=columns).items()}

    def newest_observed(self, kind: str, entity_ids: Iterable[str]) -> dict[str, datetime]:
        """When the newest stored prediction of ``kind`` on each entity was observed."""
        return {entity: at for entity, (at,) in self._newest(kind, entity_ids).items()}

    def _newest(self, kind: str, entity_ids: Iterable[str], *where: Any,
                columns: Sequence[Any] = (_P.c.observed_at,)
                ) -> dict[str, tuple[datetime | None, ...]]:
        out: dict[str, tuple[datetime | None, ...]] = {}
        ids = list(set(entity_ids))
        with self.reading() as conn:
            for i in range(0, len(ids), _CHUNK):
                rows = conn.execute(
                    select(_P.c.entity_id, *(func.max(c) for c in columns))
                    .where(_P.c.kind == kind, _P.c.entity_id.in_(ids[i:i + _CHUNK]), *where)
                    .group_by(_P.c.entity_id))
                for entity_id, *newest in rows:
                    out[entity_id] = tuple(newest)
        return out

    def record_triage(self, verdicts: Sequence[TriageVerdict], *, actor: str) -> None:
        """Record verdicts reached row by row: one UPDATE for all, one ledger entry each."""
        if not verdicts:
            return
        now = utcnow()
        with self.transaction() as conn:
            self._write_verdicts(conn, verdicts, _RECORD, actor=actor, now=now)
            self.supersede_queued(conn, [v.prediction_id for v in verdicts
                                         if v.action in _DECIDED], actor=actor, now=now)
            if any(v.action == TriageAction.ACT for v in verdicts):
                # new work for every worker: the others, woken by the intake, found
                # none yet (triage runs in one worker at a time)
                notify(conn, WAKE)

    def supersede_queued(self, conn: Any, decided: Sequence[str], *, actor: str,
                         now: datetime) -> None:
        """The loop decides once on each reading: once it acts on ``decided`` predictions
        (or holds them out), the queued ones of their kind and entity observed no later
        leave the needs-a-human queue, ``drop``/``superseded`` naming the one decided,
        with one ledger entry each, in the caller's transaction ``conn``."""
        decided_p = _P.alias("decided")
        newest: dict[str, tuple[datetime, str, str]] = {}
        for i in range(0, len(decided), _CHUNK):
            for queued, at, pid, action in conn.execute(
                    select(_P.c.id, decided_p.c.observed_at, decided_p.c.id,
                           decided_p.c.triage_action)
                    .join(decided_p, and_(decided_p.c.kind == _P.c.kind,
                                          decided_p.c.entity_id == _P.c.entity_id,
                                          decided_p.c.observed_at >= _P.c.observed_at,
                                          decided_p.c.id != _P.c.id))
                    .where(decided_p.c.id.in_(decided[i:i + _CHUNK]),
                           _P.c.triage_action == TriageAction.NEEDS_HUMAN.value)):
                newest[queued] = max(newest.get(queued, (at, pid, action)), (at, pid, action))
        if not newest:
            return
        rows = conn.execute(select(_P.c.id, _P.c.kind, _P.c.entity_id, _P.c.playbook,
                                   _P.c.expected_value).where(_P.c.id.in_(list(newest))))
        verdicts = [TriageVerdict(
            prediction_id=pid, action=TriageAction.DROP, reason="superseded",
            playbook=playbook, expected_value=ev,
            detail=f"{article(kind)} {kind} prediction on {entity} observed "
                   f"{at:%Y-%m-%d %H:%M:%S}Z, "
                   f"{by}, was " + ("acted on" if action == TriageAction.ACT.value
                                    else "held out as control")
                   + ": the loop decides once on each reading")
            for pid, kind, entity, playbook, ev in rows
            for at, by, action in [newest[pid]]]
        self._write_verdicts(  # still queued: nothing answered them meanwhile
            conn, verdicts, _RECORD.where(_P.c.triage_action == TriageAction.NEEDS_HUMAN.value),
            actor=actor, now=now)

    def _write_verdicts(self, conn: Any, verdicts: Sequence[TriageVerdict], statement: Any, *,
                        actor: str, now: datetime) -> None:
        """Verdicts onto their rows (``statement``: ``_RECORD``, perhaps narrowed), one
        ``prediction.triaged`` entry each."""
        conn.execute(statement, [{"pid": v.prediction_id, "action": v.action.value,
                                  "reason": v.reason, "detail": v.detail,
                                  "playbook": v.playbook, "ev": v.expected_value, "now": now,
                                  "vas": v.value_at_stake} for v in verdicts])
        self.record(conn, [Event(actor=actor, event="prediction.triaged",
                                 body=v.model_dump(mode="json", exclude={"detail"}))
                           for v in verdicts], now)

    def queue_depth(self) -> int:
        """Predictions waiting: not yet triaged, or actionable without a decision."""
        with self.reading() as conn:
            untriaged = conn.scalar(select(func.count()).select_from(t.predictions)
                                    .where(t.predictions.c.triaged_at.is_(None)))
            unstarted = conn.scalar(select(func.count()).select_from(t.predictions)
                                    .where(t.UNSTARTED_ACT))
        return int(untriaged or 0) + int(unstarted or 0)

    def triage_counts(self) -> dict[tuple[str, str], int]:
        with self.reading() as conn:
            rows = conn.execute(select(t.predictions.c.triage_action, t.predictions.c.triage_reason,
                                       func.count()).group_by(t.predictions.c.triage_action,
                                                              t.predictions.c.triage_reason))
            return {(a or "untriaged", r or ""): n for a, r, n in rows}

    def entities_among(self, candidates: Iterable[str]) -> list[str]:
        """Which of ``candidates`` are entity ids that predictions are about."""
        wanted = sorted(set(candidates))[:200]
        if not wanted:
            return []
        query = select(t.predictions.c.entity_id).where(
            t.predictions.c.entity_id.in_(wanted)).distinct()
        with self.reading() as conn:
            return sorted(conn.scalars(query))


class _TimeBinder:
    """A ``Time`` value as the driver takes it, converted once per distinct value (the
    rows of a nightly file share a few)."""

    def __init__(self, conn: Any) -> None:
        dialect = conn.dialect
        self._bind = t.Time.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        self._seen: dict[datetime, Any] = {}

    def __call__(self, value: datetime) -> Any:
        bound = self._seen.get(value)
        if bound is None:
            if len(self._seen) > 4096:
                self._seen.clear()
            bound = self._seen[value] = self._bind(value)
        return bound



def _copies_differ(row: Prediction, columns: Mapping[str, Any], *, proven: bool) -> list[str]:
    """The copied columns that no longer say what the stored row says. ``proven``: the
    row hashes into its batch's root (so the column is the one altered); else the row
    itself is not proven and either may be (trial 31: the altered payload was called
    the ledger's)."""
    if proven:
        return [f"column {name} is {got!r}, but the row the ledger proves says {want!r} "
                "(the stored row was altered)"
                for name, got, want in copies_differ(row, columns)]
    return [f"column {name} is {got!r} and the stored row says {want!r}; the row does not "
            "hash to its batch's root, so the ledger proves neither (the row, or both, "
            "were altered)" for name, got, want in copies_differ(row, columns)]


def _prove(prediction_id: str, seq: int, batch: list[tuple[str, Any]],
           entry: LedgerEntry | None) -> RowProof:
    ids = [i for i, _ in batch]
    index = ids.index(prediction_id)
    leaves = [stored_leaf(text) for _, text in batch]
    path = merkle_path(leaves, index)
    problems = []
    root = str(entry.body.get("root", "")) if entry is not None else ""
    if entry is None:
        problems.append(f"ledger entry {seq} is missing")
    else:
        if entry.event != "predictions.ingested":
            problems.append(f"ledger entry {seq} is {entry.event}, not predictions.ingested")
        if entry_hash(entry.prev_hash, entry.seq, entry.at, entry) != entry.hash:
            problems.append(f"ledger entry {seq} was altered: its content does not match its hash")
        if entry.body.get("rows") != len(leaves):
            problems.append(f"ledger entry {seq} records {entry.body.get('rows')} rows; "
                            f"{len(leaves)} are stored with it")
        if not merkle_check(leaves[index], path, root):
            problems.append(f"the stored row does not hash to the root ledger entry {seq} "
                            "records (the row or its batch was altered)")
    return RowProof(prediction_id=prediction_id, seq=seq, entry_hash=entry.hash if entry else "",
                    index=index, rows=len(leaves), leaf=leaves[index].hex(), path=path, root=root,
                    problems=problems)
