"""Approval requests and their answers (``ApprovalRow``), four-eyes edit proposals, and
the SLA alerts sent for pending requests.

Persistence only: who may answer, what an answer means and when a request expires are
the approval service's rules (``agent.approvals``). Writes that change a request take
the decision's unit of work (``DecisionTx``), so each commits with its ledger entry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from decisionops.agent.errors import ConflictError, NotFoundError
from decisionops.agent.models import ApprovalRequest, ApprovalStatus, decision_id_for, utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Database, DecisionTx, Repo
from decisionops.agent.store._holds import ActiveHolds, unheld
from decisionops.agent.store._ops_tables import approval_alerts
from decisionops.agent.store._references import compact_request, hydrate_requests, is_compact
from decisionops.agent.store._rows import ApprovalRow, from_mapping
from decisionops.agent.store._service_tables import edit_proposals
from decisionops.agent.store.ledger import Event

__all__ = ["ApprovalRepo"]

_EVERY_VERSION = 1 << 30
"""A plan version above any: every revision of a decision counts (``requesters``)."""

_EXISTING = select(t.approvals.c.id).where(t.approvals.c.id.in_(bindparam("ids", expanding=True)))
_INSERT = insert(t.approvals)
_ALL_APPLIED = (update(t.approvals)
                .where(t.approvals.c.decision_id == bindparam("d"),
                       t.approvals.c.applied_at.is_(None),
                       t.approvals.c.status != ApprovalStatus.PENDING.value)
                .values(applied_at=bindparam("at")))
_CLOSE_PENDING = (update(t.approvals)
                  .where(t.approvals.c.decision_id == bindparam("d"),
                         t.approvals.c.status == ApprovalStatus.PENDING.value)
                  .values(status=ApprovalStatus.SUPERSEDED.value))
_BY_ID = select(t.approvals).where(t.approvals.c.id == bindparam("id"))
_STATUS = select(t.approvals.c.status).where(t.approvals.c.id == bindparam("id"))
_LOCK_VERSION = (select(t.approvals.c.id)
                 .where(t.approvals.c.decision_id == bindparam("d"),
                        t.approvals.c.plan_version == bindparam("v"),
                        t.approvals.c.status == ApprovalStatus.PENDING.value)
                 .order_by(t.approvals.c.id).with_for_update())
_WITHDRAW = (update(t.approvals)
             .where(t.approvals.c.decision_id == bindparam("d"),
                    t.approvals.c.plan_version == bindparam("v"),
                    t.approvals.c.status == ApprovalStatus.PENDING.value,
                    t.approvals.c.id != bindparam("by"))
             .values(status=ApprovalStatus.SUPERSEDED.value, answer=bindparam("an"))
             .returning(t.approvals.c.id))
"""The other requests of a plan version still pending, withdrawn (the ids: exactly those
this statement changed, whatever another answer's transaction did meanwhile)."""
_PENDING_IDS = (select(t.approvals.c.id)
                .where(t.approvals.c.decision_id == bindparam("decision_id"),
                       t.approvals.c.status == ApprovalStatus.PENDING.value)
                .order_by(t.approvals.c.deadline, t.approvals.c.id))
_WORLD_CHANGED = (select(t.ledger.c.body)
                  .where(t.ledger.c.decision_id == bindparam("d"),
                         t.ledger.c.plan_hash == bindparam("h"),
                         t.ledger.c.event == "preview.changed")
                  .order_by(t.ledger.c.seq).limit(1))
_ANSWERED = (select(t.approvals)
             .where(t.approvals.c.decision_id == bindparam("d"),
                    t.approvals.c.plan_version <= bindparam("v"),
                    t.approvals.c.status != ApprovalStatus.PENDING.value,
                    # a superseded request of version v was withdrawn from it
                    or_(t.approvals.c.status != ApprovalStatus.SUPERSEDED.value,
                        t.approvals.c.plan_version == bindparam("v")))
             .order_by(t.approvals.c.answered_at))
_READY = (select(t.approvals.c.decision_id)
          .where(t.approvals.c.applied_at.is_(None),
                 t.approvals.c.status != ApprovalStatus.SUPERSEDED.value)
          .group_by(t.approvals.c.decision_id)
          .having(func.sum(case((t.approvals.c.status == ApprovalStatus.PENDING.value, 1),
                                else_=0)) == 0))
"""Decisions with answers not applied yet and no request still pending: the engine feeds
a decision's graph its answers once every function it waits on has answered (join needs
them all), so an answer while others are pending waits in the store. The rows it reads
are those of the partial index ``ix_approvals_unapplied`` (pending and answered ones not
applied): open work, not history."""
_ANSWER = (update(t.approvals)
           .where(t.approvals.c.id == bindparam("aid"),
                  t.approvals.c.status == ApprovalStatus.PENDING.value,
                  t.approvals.c.plan_hash == bindparam("h"))
           .values(status=bindparam("st"), approver=bindparam("by"), answer=bindparam("an"),
                   answered_at=bindparam("at"), approved_arguments=bindparam("aa")))
"""Compare-and-set: answers a request still pending for this plan version."""
_APPLIED = (update(t.approvals).where(t.approvals.c.id.in_(bindparam("ids", expanding=True)))
            .values(applied_at=bindparam("at")))
_PENDING_DEADLINES = (select(t.approvals.c.id, t.approvals.c.function, t.approvals.c.requested_at,
                             t.approvals.c.deadline)
                      .where(t.approvals.c.status == ApprovalStatus.PENDING.value,
                             t.approvals.c.deadline.is_not(None))
                      .order_by(t.approvals.c.deadline).limit(bindparam("limit")))
_CHUNK = 500


WITHDRAWN = "withdrawn"
"""The status a withdrawn request shows (``ApprovalRow.shown_status``) and a listing
filters by: stored as superseded, its answer saying it was withdrawn (``end_version``)."""
_WITHDRAWN_ANSWER = t.approvals.c.answer["type"].as_string() == WITHDRAWN


_FUNCTIONS = "functions"
"""``ApprovalRepo.list``'s filter of a viewer limited to some functions (an approver)."""


@cache
def _listing(filters: frozenset[str]) -> Select[Any]:
    """``ApprovalRepo.list``'s query for one combination of filters (each a bound
    parameter of its column's name; ``withdrawn``: only withdrawn requests; ``functions``:
    only those functions' requests), built once."""
    query = (select(t.approvals).order_by(t.approvals.c.deadline, t.approvals.c.id)
             .limit(bindparam("limit")))
    for name in sorted(filters - {WITHDRAWN, _FUNCTIONS}):
        query = query.where(t.approvals.c[name] == bindparam(name))
    if _FUNCTIONS in filters:
        query = query.where(t.approvals.c.function.in_(bindparam(_FUNCTIONS, expanding=True)))
    if WITHDRAWN in filters:
        query = query.where(_WITHDRAWN_ANSWER)
    return query


class _Requests:
    """Approval requests already built, by everything of their row they derive from.

    A request is its row's own columns (id, decision, function, plan version and hash,
    reason, the ids of its steps, the approvers) and the steps of that plan version,
    which is immutable once accepted (requests are made for accepted versions only, and
    the hash is in the key). Building one again gives the same request, so reads of a
    known request (the engine's answers, the approval service's checks, the inbox) skip
    the plan read and the validation. Bounded; oldest out first."""

    def __init__(self, size: int = 4096) -> None:
        self._items: dict[tuple[Any, ...], ApprovalRequest] = {}
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def key(row: dict[str, Any]) -> tuple[Any, ...] | None:
        request = row.get("request")
        if not is_compact(request):
            return None  # a full copy stored with the row: validated as it is
        return (row["id"], row["decision_id"], row["function"], row["plan_version"],
                row["plan_hash"], row.get("reason") or "", tuple(request["steps"]),
                tuple(request.get("approvers", ())),
                tuple(r.get("decision_id") for r in request.get("related", ())))

    def get(self, key: tuple[Any, ...] | None) -> ApprovalRequest | None:
        if key is None:
            return None
        with self._lock:
            return self._items.get(key)

    def put(self, key: tuple[Any, ...], request: ApprovalRequest) -> None:
        with self._lock:
            if len(self._items) >= self._size:
                del self._items[next(iter(self._items))]
            self._items[key] = request


class ApprovalRepo(Repo):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._requests = _Requests()

    def _rows(self, conn: Connection, rows: Iterable[Any]) -> list[ApprovalRow]:
        mapped = [dict(r._mapping) for r in rows]
        keys = [_Requests.key(m) for m in mapped]
        built = [self._requests.get(k) for k in keys]
        hydrate_requests(conn, (m for m, b in zip(mapped, built, strict=True) if b is None))
        out = []
        for m, key, request in zip(mapped, keys, built, strict=True):
            if request is None:
                request = ApprovalRequest.model_validate(m["request"])
                if key is not None and len(request.steps) == len(key[6]):
                    self._requests.put(key, request)
            out.append(from_mapping(ApprovalRow, m, request=request))
        return out

    # ------------------------------------------------------------------ reads

    def get(self, approval_id: str) -> ApprovalRow:
        with self.reading() as conn:
            found = self._rows(conn, conn.execute(_BY_ID, {"id": approval_id}))
        if not found:
            raise NotFoundError(f"no approval {approval_id!r}", field="approval_id")
        return found[0]

    def list(self, *, decision_id: str | None = None, function: str | None = None,
             status: str | None = None, plan_version: int | None = None,
             functions: Sequence[str] | None = None, limit: int = 500) -> list[ApprovalRow]:
        """By deadline, soonest first. ``status`` is a stored status (``superseded``
        includes the withdrawn requests) or ``withdrawn`` (those alone). ``functions``:
        what a viewer limited to them sees (an approver; None: every request), filtered
        before ``limit`` counts."""
        withdrawn = status == WITHDRAWN
        filters = {"decision_id": decision_id or None, "function": function or None,
                   "status": ApprovalStatus.SUPERSEDED.value if withdrawn else status or None,
                   "plan_version": plan_version,
                   _FUNCTIONS: None if functions is None else list(functions)}
        given = {k: v for k, v in filters.items() if v is not None}
        with self.reading() as conn:
            return self._rows(conn, conn.execute(
                _listing(frozenset(given) | ({WITHDRAWN} if withdrawn else set())),
                {**given, "limit": limit}))

    def answered(self, decision_id: str, plan_version: int) -> list[ApprovalRow]:
        """The answers recorded for the decision up to ``plan_version`` (applied to its
        graph or not), oldest first."""
        with self.reading() as conn:
            return self._rows(conn, conn.execute(_ANSWERED, {"d": decision_id,
                                                             "v": plan_version}))

    def decisions_with_answers(self, limit: int = 1000, *, skip: ActiveHolds | None = None
                               ) -> list[str]:
        """Decisions whose answers are ready to apply (``_READY``), the longest waiting
        first (without those an entity or playbook hold in ``skip`` keeps where they
        are)."""
        query = _READY
        if clauses := unheld(skip):
            query = query.join(t.decisions, t.decisions.c.id == t.approvals.c.decision_id
                               ).where(*clauses)
        with self.reading() as conn:
            return list(conn.scalars(
                query.order_by(func.min(t.approvals.c.answered_at)).limit(limit)))

    def ready(self, decision_id: str) -> bool:
        """Whether the decision's answers are ready to apply (``_READY``)."""
        with self.reading() as conn:
            return conn.scalar(_READY.where(t.approvals.c.decision_id == bindparam("d")),
                               {"d": decision_id}) is not None

    def world_changed(self, decision_id: str, plan_hash: str) -> dict[str, Any] | None:
        """What the ``preview.changed`` entry of plan ``plan_hash`` recorded (the parts
        whose world changed since routing, and what was done), or None: none was."""
        with self.reading() as conn:
            return conn.scalar(_WORLD_CHANGED, {"d": decision_id, "h": plan_hash})

    @staticmethod
    def record_world_changed(tx: DecisionTx, *, plan_version: int, plan_hash: str,
                             changed: Mapping[str, str], then: str) -> None:
        tx.record("preview.changed", {"changed": dict(changed), "plan_version": plan_version,
                                      "then": then}, plan_hash=plan_hash)

    def pending_ids(self, decision_id: str) -> list[str]:
        """The ids of the decision's requests still waiting on an answer, by deadline."""
        with self.reading() as conn:
            return list(conn.scalars(_PENDING_IDS, {"decision_id": decision_id}))

    def has_unapplied(self, decision_id: str) -> bool:
        """Whether the decision has answers recorded and not yet applied."""
        with self.reading() as conn:
            return conn.scalar(select(t.approvals.c.id).where(
                t.approvals.c.decision_id == decision_id, t.approvals.c.applied_at.is_(None),
                t.approvals.c.status.not_in([ApprovalStatus.PENDING.value,
                                             ApprovalStatus.SUPERSEDED.value])).limit(1)) is not None

    def pending_count(self) -> dict[str, int]:
        with self.reading() as conn:
            return dict(conn.execute(  # type: ignore[arg-type]
                select(t.approvals.c.function, func.count())
                .where(t.approvals.c.status == ApprovalStatus.PENDING.value)
                .group_by(t.approvals.c.function)).all())

    def counts(self) -> dict[tuple[str, str], int]:
        with self.reading() as conn:
            rows = conn.execute(select(t.approvals.c.function, t.approvals.c.status, func.count())
                                .group_by(t.approvals.c.function, t.approvals.c.status))
            return {(f, s): n for f, s, n in rows}

    def inbox(self, functions: Sequence[str] | None, *, entity_id: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        """Pending requests of ``functions`` (None: all; ``entity_id``: about that entity
        only) joined with what ranks them: by the hour their SLA deadline falls in,
        soonest first, then the most value at stake (requests due within the same hour:
        the bigger one first)."""
        with self.reading() as conn:
            return hydrate_requests(conn, self._ranked(conn, functions, entity_id, limit))

    def ranked(self, functions: Sequence[str] | None, *, limit: int) -> list[ApprovalRow]:
        """Pending requests of ``functions`` (None: all) as rows, in the inbox's order:
        every listing of pending requests, on every channel, pages and orders them
        alike."""
        with self.reading() as conn:
            order = [r["id"] for r in self._ranked(conn, functions, None, limit)]
            rows = self._rows(conn, conn.execute(
                select(t.approvals).where(t.approvals.c.id.in_(order)))) if order else []
        by_id = {row.id: row for row in rows}
        return [by_id[i] for i in order if i in by_id]

    @staticmethod
    def _ranked(conn: Connection, functions: Sequence[str] | None, entity_id: str | None,
                limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` pending requests in the inbox's order (``inbox``), with
        what ranks them; their requests as stored."""
        a, p, d = t.approvals, t.predictions, t.decisions
        query = (select(a.c.id, a.c.decision_id, a.c.function, a.c.plan_version, a.c.plan_hash,
                        a.c.reason, a.c.deadline, a.c.requested_at, a.c.request,
                        d.c.kind, d.c.entity_id, d.c.expected_value, p.c.score,
                        p.c.value_at_stake)
                 .join(d, d.c.id == a.c.decision_id).join(p, p.c.id == d.c.prediction_id)
                 .where(a.c.status == "pending"))
        if functions is not None:
            query = query.where(a.c.function.in_(list(functions)))
        if entity_id is not None:
            query = query.where(d.c.entity_id == entity_id)
        # Cut by exact deadline (no deadline last, on every database), then take the rest
        # of the hour the cut falls in: a bigger request due later in that hour ranks
        # before the ones due earlier in it.
        by_deadline = query.order_by(a.c.deadline.is_(None), a.c.deadline,
                                     p.c.value_at_stake.desc(), a.c.id)
        found = [dict(r._mapping) for r in conn.execute(by_deadline.limit(limit))]
        last = found[-1]["deadline"] if len(found) == limit else None
        if last is not None:
            start = last.replace(minute=0, second=0, microsecond=0)
            seen = {r["id"] for r in found}
            found += [row for row in (dict(r._mapping) for r in conn.execute(
                query.where(a.c.deadline >= start, a.c.deadline < start + timedelta(hours=1))
                .order_by(p.c.value_at_stake.desc(), a.c.id).limit(limit)))
                if row["id"] not in seen]
        far = datetime.max.replace(tzinfo=UTC)
        found.sort(key=lambda r: ((r["deadline"] or far).replace(minute=0, second=0,
                                                                 microsecond=0),
                                  -(r["value_at_stake"] or 0.0), r["id"]))
        return found[:limit]

    # ------------------------------------------------------------------ writes

    @staticmethod
    def request(tx: DecisionTx, requests: Sequence[tuple[ApprovalRequest, datetime]], *,
                new: bool = False) -> int:
        """Record pending requests (each with its deadline). Idempotent: a request that
        exists keeps its state. Returns how many were new. ``new``: the caller knows none
        of the decision's requests is stored (nothing to look for; were one there, the
        insert would fail rather than overwrite it)."""
        conn = tx.conn
        existing = set(conn.scalars(_EXISTING, {"ids": [r.approval_id for r, _ in requests]})
                       ) if requests and not new else set()
        rows = []
        for req, deadline in requests:
            if req.approval_id in existing:
                continue
            rows.append({"id": req.approval_id, "decision_id": req.decision_id,
                         "plan_version": req.plan_version, "plan_hash": req.plan_hash,
                         "function": req.function,
                         "status": ApprovalStatus.PENDING.value, "reason": req.reason,
                         "request": compact_request(req), "requested_at": tx.now,
                         "deadline": deadline})
            tx.record("approval.requested", {"approval_id": req.approval_id,
                                             "function": req.function, "reason": req.reason,
                                             "steps": [s.id for s in req.steps]},
                      plan_hash=req.plan_hash)
        if rows:
            conn.execute(_INSERT, rows)
        return len(rows)

    @staticmethod
    def auto_approve(tx: DecisionTx, requests: Sequence[ApprovalRequest], plan_hash: str, *,
                     new: bool = False, earned: Mapping[str, str] | None = None) -> None:
        """Record the functions whose part policy approved: one row each, and one ledger
        entry with the hash of every approved argument set (what the executor checks
        against). Idempotent. ``new``: as for ``request``. ``earned``: approval id → the
        comment of an approval by earned autonomy (approver ``autonomy:<function>``)."""
        earned = earned or {}
        conn = tx.conn
        existing = set(conn.scalars(_EXISTING, {"ids": [r.approval_id for r in requests]})
                       ) if requests and not new else set()
        fresh = [r for r in requests if r.approval_id not in existing]
        if not fresh:
            return
        conn.execute(_INSERT, [{
            "id": req.approval_id, "decision_id": req.decision_id,
            "plan_version": req.plan_version, "plan_hash": req.plan_hash,
            "function": req.function,
            "status": ApprovalStatus.AUTO_APPROVED.value, "reason": req.reason,
            "request": compact_request(req), "requested_at": tx.now, "deadline": None,
            "answered_at": tx.now,
            "approver": (f"autonomy:{req.function}" if req.approval_id in earned
                         else f"policy:{req.function}"),
            # The approved arguments are the request's own (their hashes are in the
            # ledger): no second copy.
            "answer": {"type": "approve", "comment": earned.get(req.approval_id, "policy")},
            "approved_arguments": None, "applied_at": tx.now} for req in fresh])
        tx.record("approval.auto_approved", {
            "approvals": [{"approval_id": r.approval_id, "function": r.function,
                           **({"earned": earned[r.approval_id]} if r.approval_id in earned
                              else {})} for r in fresh],
            "approved_hashes": {s.id: s.arguments_hash for r in fresh for s in r.steps}},
            plan_hash=plan_hash, actor="policy")

    @staticmethod
    def answer(tx: DecisionTx, approval_id: str, *, plan_hash: str, status: ApprovalStatus,
               approver: str, answer: dict[str, Any], approved_arguments: dict[str, Any] | None,
               approved_hashes: dict[str, str], body: dict[str, Any] | None = None) -> None:
        """Compare-and-set: only a pending request for this exact plan version is
        answered (else ``ConflictError``, nothing written). The ledger entry carries the
        hash of every argument set the answer approves (none for a refusal)."""
        res = tx.conn.execute(_ANSWER, {
            "aid": approval_id, "h": plan_hash, "st": status.value, "by": approver,
            "an": answer, "at": tx.now, "aa": approved_arguments})
        if res.rowcount == 0:
            row = tx.conn.execute(select(t.approvals.c.status, t.approvals.c.plan_hash,
                                         t.approvals.c.approver)
                                  .where(t.approvals.c.id == approval_id)).first()
            if row is None:
                raise NotFoundError(f"no approval {approval_id!r}", field="approval_id")
            if row.plan_hash != plan_hash:
                raise ConflictError(f"approval {approval_id} is for another plan version")
            raise ConflictError(f"approval {approval_id} is already {row.status}"
                                + (f" (by {row.approver})" if row.approver else ""))
        tx.wake = True
        tx.record(f"approval.{status.value}", {"approval_id": approval_id, "answer": answer,
                                               "approved_hashes": approved_hashes,
                                               **(body or {})},
                  plan_hash=plan_hash, actor=approver)

    @staticmethod
    def mark_applied(tx: DecisionTx, approval_ids: Sequence[str]) -> None:
        if approval_ids:
            tx.conn.execute(_APPLIED, {"ids": list(approval_ids), "at": tx.now})

    @staticmethod
    def lock_version(tx: DecisionTx, plan_version: int) -> None:
        """Lock the pending requests of a plan version, in id order (PostgreSQL; SQLite
        has one writer): two answers that each end the version would otherwise lock their
        own request, then wait on the other's to withdraw it, a deadlock."""
        tx.conn.execute(_LOCK_VERSION, {"d": tx.decision_id, "v": plan_version})

    @staticmethod
    def withdraw_others(tx: DecisionTx, *, plan_version: int, plan_hash: str, by: str,
                        reason: str) -> list[str]:
        """Withdraw the other requests of plan version ``plan_version`` still pending,
        in the transaction of the answer ``by`` that ended the version (superseded, the
        answer column saying why: ``withdrawn``); the ids withdrawn, in one ledger entry."""
        ids = sorted(tx.conn.scalars(_WITHDRAW, {
            "d": tx.decision_id, "v": plan_version, "by": by,
            "an": {"type": WITHDRAWN, "reason": reason, "by": by}}))
        if ids:
            tx.record("approval.withdrawn", {"approval_ids": ids, "by": by, "reason": reason,
                                             "plan_version": plan_version}, plan_hash=plan_hash)
        return ids

    @staticmethod
    def mark_all_applied(tx: DecisionTx, *, finished: bool = False) -> None:
        """Every answer of the decision is consumed; once it ``finished``, a request
        still pending (nothing waits for it any more) is superseded too."""
        tx.conn.execute(_ALL_APPLIED, {"d": tx.decision_id, "at": tx.now})
        if finished:
            tx.conn.execute(_CLOSE_PENDING, {"d": tx.decision_id})

    # ------------------------------------------------------------------ four eyes

    @staticmethod
    def propose_edit(tx: DecisionTx, approval_id: str, *, plan_hash: str, proposer: str,
                     arguments: dict[str, Any], comment: str) -> None:
        """Record a four-eyes edit proposal (replacing an earlier one by anyone)."""
        conn = tx.conn
        status = conn.scalar(select(t.approvals.c.status).where(
            t.approvals.c.id == approval_id, t.approvals.c.plan_hash == plan_hash)
            .with_for_update())
        if status != ApprovalStatus.PENDING.value:
            raise ConflictError(f"approval {approval_id} is no longer pending for this "
                                "plan version")
        conn.execute(edit_proposals.delete().where(edit_proposals.c.approval_id == approval_id))
        conn.execute(insert(edit_proposals).values(
            approval_id=approval_id, plan_hash=plan_hash, proposer=proposer,
            arguments=arguments, comment=comment, created_at=tx.now))
        tx.record("approval.edit_proposed", {"approval_id": approval_id,
                                             "arguments": arguments, "comment": comment},
                  plan_hash=plan_hash, actor=proposer)

    @staticmethod
    def locked_proposal(tx: DecisionTx, approval_id: str) -> dict[str, Any] | None:
        """The standing edit proposal of a request, read with the request's row locked
        until ``tx`` ends (``propose_edit`` takes the same lock)."""
        tx.conn.execute(select(t.approvals.c.id).where(t.approvals.c.id == approval_id)
                        .with_for_update())
        row = tx.conn.execute(select(edit_proposals).where(
            edit_proposals.c.approval_id == approval_id)).first()
        return dict(row._mapping) if row else None

    def proposal(self, approval_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(edit_proposals).where(
                edit_proposals.c.approval_id == approval_id)).first()
        return dict(row._mapping) if row else None

    def proposers(self, decision_id: str, approval_id: str) -> set[str]:
        """Everyone who proposed an edit to this request (from the ledger)."""
        with self.reading() as conn:
            return {actor for actor, body in conn.execute(
                select(t.ledger.c.actor, t.ledger.c.body).where(
                    t.ledger.c.decision_id == decision_id,
                    t.ledger.c.event == "approval.edit_proposed"))
                    if body.get("approval_id") == approval_id}

    def requesters(self, decision_id: str, plan_version: int) -> set[str]:
        """Who asked for this plan version or a change it carries: whoever submitted the
        prediction, picked its playbook, supplied its value at stake or wrote its plan by
        hand (version 1, which every later version is drafted from), and whoever asked
        for any revision since (a change asked for in version 2 may still be in version 4,
        whoever asked for version 3)."""
        with self.reading() as conn:
            prediction_id = conn.scalar(select(t.decisions.c.prediction_id)
                                        .where(t.decisions.c.id == decision_id))
            batch = (select(t.ledger.c.actor)
                     .join(t.predictions, t.predictions.c.ingest_seq == t.ledger.c.seq)
                     .where(t.predictions.c.id == prediction_id))
            # Rows stored before batch entries have an entry of their own.
            alone = select(t.ledger.c.actor).where(
                t.ledger.c.event == "prediction.ingested",
                t.ledger.c.body["prediction_id"].as_string() == prediction_id)
            author = set(conn.scalars(select(t.hand_plans.c.author).where(
                t.hand_plans.c.prediction_id == prediction_id)))
            # A person who answered it from the needs-a-human queue (picked its playbook,
            # supplied its value at stake, wrote its plan) asked for this plan too; and a
            # follow-up they planned again (its first decision ended needs_human) carries
            # what was asked of the first: its requesters are this one's.
            answered = conn.execute(select(t.ledger.c.actor, t.ledger.c.body).where(
                t.ledger.c.event.in_(("prediction.picked", "prediction.value_supplied",
                                      "prediction.planned_by_hand")),
                t.ledger.c.body["prediction_id"].as_string() == prediction_id)).all()
            revisers = set(conn.scalars(select(t.approvals.c.approver).where(
                t.approvals.c.decision_id == decision_id,
                t.approvals.c.plan_version < plan_version,
                t.approvals.c.status == ApprovalStatus.REVISE.value,
                t.approvals.c.approver.is_not(None))))
            own = ((set(conn.scalars(batch)) or set(conn.scalars(alone)))
                   | {actor for actor, _ in answered} | author | revisers)
        replans = {body.get("replans") for _, body in answered} - {None}
        for first in replans:
            own |= self.requesters(decision_id_for(first), _EVERY_VERSION)
        return own

    # ------------------------------------------------------------------ SLA alerts

    def pending_deadlines(self, limit: int = 5000) -> list[tuple[str, str, datetime, datetime]]:
        """Pending requests with a deadline, soonest first, as ``(id, function,
        requested_at, deadline)``: the columns the SLA sweep reads every tick to find the
        few that are due for a reminder, an escalation or expiry (without building every
        request)."""
        with self.reading() as conn:
            return [tuple(r) for r in conn.execute(_PENDING_DEADLINES, {"limit": limit})]

    def pending_with_alerts(self, limit: int = 5000, *, ids: Sequence[str] | None = None
                            ) -> list[tuple[ApprovalRow, set[str]]]:
        """Pending requests (of ``ids``, when given), soonest deadline first, each with
        the kinds of SLA alert already sent for it."""
        query = (select(t.approvals).where(t.approvals.c.status == ApprovalStatus.PENDING.value)
                 .order_by(t.approvals.c.deadline).limit(limit))
        with self.reading() as conn:
            if ids is None:
                rows = self._rows(conn, conn.execute(query))
            else:
                wanted = list(ids)[:limit]
                found = [r for i in range(0, len(wanted), _CHUNK) for r in conn.execute(
                    query.where(t.approvals.c.id.in_(wanted[i:i + _CHUNK])))]
                rows = self._rows(conn, sorted(found, key=lambda r: (r.deadline is not None,
                                                                r.deadline or 0)))
            sent: dict[str, set[str]] = {}
            row_ids = [r.id for r in rows]
            for i in range(0, len(row_ids), _CHUNK):
                for approval_id, kind in conn.execute(
                        select(approval_alerts.c.approval_id, approval_alerts.c.kind)
                        .where(approval_alerts.c.approval_id.in_(row_ids[i:i + _CHUNK]))):
                    sent.setdefault(approval_id, set()).add(kind)
        return [(row, sent.get(row.id, set())) for row in rows]

    def claim_alert(self, row: ApprovalRow, kind: str, *, detail: str, actor: str) -> bool:
        """Record that alert ``kind`` is being sent for the request; False if it already
        was (by this or another worker): each alert goes out once. False too once the
        request is no longer pending (answered, expired or withdrawn since the sweep read
        it): nobody is reminded of what waits for no one."""
        now = utcnow()
        try:
            with self.transaction() as conn:
                if conn.scalar(_STATUS, {"id": row.id}) != ApprovalStatus.PENDING.value:
                    return False
                conn.execute(insert(approval_alerts).values(approval_id=row.id, kind=kind,
                                                            at=now, detail=detail))
                self.record(conn, [Event(actor=actor, event=f"approval.{kind}",
                                         decision_id=row.decision_id, plan_hash=row.plan_hash,
                                         body={"approval_id": row.id, "detail": detail})], now)
        except IntegrityError:
            return False
        return True
