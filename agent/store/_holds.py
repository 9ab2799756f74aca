"""Operator holds: pause acting on an entity, a playbook, a business function or one
decision until a time (the loop holds a decision itself when its legs keep failing:
``DecisionRepo.note_failure``). Placing and releasing one are ledger entries; which
holds cover a piece of work is ``ActiveHolds.covering`` (one rule, read by triage, by
the engine before it applies answers, and by the executor inside its write-ahead
transaction); what a hold stops is the approval service's rule (``ApprovalService.hold``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, bindparam, insert, or_, select, update

from decisionops.agent.models import utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo
from decisionops.agent.store._notify import WAKE, notify
from decisionops.agent.store._rows import HoldRow, from_mapping
from decisionops.agent.store._service_tables import holds
from decisionops.agent.store.ledger import Event

__all__ = ["UNTIL_RELEASED", "ActiveHolds", "HoldRepo", "TargetType", "place", "unheld"]

TargetType = Literal["entity", "playbook", "function", "decision"]

UNTIL_RELEASED = datetime(9999, 12, 31, tzinfo=UTC)
"""The ``until`` of a hold that lasts until someone releases it."""


@dataclass(frozen=True)
class ActiveHolds:
    """The holds in force at one moment."""

    rows: tuple[HoldRow, ...] = ()

    def covering(self, *, entity_id: str | None = None, playbook: str | None = None,
                 functions: Iterable[str] = (), decision_id: str | None = None
                 ) -> list[HoldRow]:
        """The holds that cover work on ``entity_id`` under ``playbook`` by ``functions``
        (of decision ``decision_id``)."""
        wanted = {("entity", entity_id), ("playbook", playbook), ("decision", decision_id),
                  *(("function", f) for f in functions)}
        return [h for h in self.rows if (h.target_type, h.target) in wanted]

    def why(self, *, entity_id: str | None = None, playbook: str | None = None,
            functions: Iterable[str] = (), decision_id: str | None = None) -> str | None:
        """Why such work is held, or None."""
        found = self.covering(entity_id=entity_id, playbook=playbook, functions=functions,
                              decision_id=decision_id)
        return "; ".join(describe(h) for h in found) or None


def unheld(holds: ActiveHolds | None) -> list[ColumnElement[bool]]:
    """Conditions on ``decisions`` that leave out the decisions an entity, playbook or
    decision hold keeps where they are (so a worker's batch is not filled with work it
    must skip)."""
    if holds is None or not holds.rows:
        return []
    entities = [h.target for h in holds.rows if h.target_type == "entity"]
    playbooks = [h.target for h in holds.rows if h.target_type == "playbook"]
    decisions = [h.target for h in holds.rows if h.target_type == "decision"]
    clauses: list[ColumnElement[bool]] = []
    if entities:
        clauses.append(t.decisions.c.entity_id.not_in(entities))
    if decisions:
        clauses.append(t.decisions.c.id.not_in(decisions))
    if playbooks:
        clauses.append(or_(t.decisions.c.playbook.is_(None),
                           t.decisions.c.playbook.not_in(playbooks)))
    return clauses


def describe(hold: HoldRow) -> str:
    """What a person reading why work waits needs: the target, the hold, until when, why."""
    why = f" ({hold.reason})" if hold.reason else ""
    until = ("until released" if hold.until >= UNTIL_RELEASED
             else f"until {hold.until:%Y-%m-%d %H:%M}Z")
    return f"{hold.target_type} {hold.target} is on hold #{hold.id} {until}{why}"


LAPSED = "system:until"
"""Who releases a hold that ran out by itself: the clock, at its ``until``."""

_ACTIVE = (select(holds).where(holds.c.released_at.is_(None), holds.c.until > bindparam("now"))
           .order_by(holds.c.until))


def active(conn: Connection, now: datetime) -> ActiveHolds:
    return ActiveHolds(tuple(from_mapping(HoldRow, r._mapping)
                             for r in conn.execute(_ACTIVE, {"now": now})))


def place(conn: Connection, *, target_type: TargetType, target: str, until: datetime,
          reason: str, actor: str, now: datetime) -> tuple[int, Event]:
    """Insert a hold in ``conn``'s transaction; its id and the ledger event to record
    with it (a decision's hold is an entry of that decision's history)."""
    hold_id = int(conn.execute(insert(holds).values(
        target_type=target_type, target=target, until=until, reason=reason,
        created_by=actor, created_at=now)).inserted_primary_key[0])
    return hold_id, Event(actor=actor, event="hold.placed",
                          decision_id=target if target_type == "decision" else None,
                          body={"hold_id": hold_id, "target_type": target_type,
                                "target": target, "until": until.isoformat(),
                                "reason": reason})


_PENDING_TIMED = (
    select(t.approvals.c.id, t.approvals.c.requested_at, t.approvals.c.deadline,
           t.approvals.c.function, t.decisions.c.id.label("decision_id"),
           t.decisions.c.entity_id, t.decisions.c.playbook)
    .join(t.decisions, t.decisions.c.id == t.approvals.c.decision_id)
    .where(t.approvals.c.status == "pending", t.approvals.c.deadline.is_not(None)))


def _resume_clocks(conn: Connection, released: Sequence[HoldRow], now: datetime) -> None:
    """A hold stops the SLA clock of the requests it covers (no reminder, escalation or
    expiry while it stands: ``agent.approvals._deadlines``); when the last hold that
    stopped a request's clock goes (``released``, just marked released at ``now``),
    the deadline moves on by the time the clock stood: from the start of the unbroken
    run of covering holds that ends now, once, however they overlapped (trial 27: two
    overlapping holds gave the overlap back twice), so its approvers get the time they
    had left (found in a black-box trial: released, a request expired at once). What
    a hold covers is ``ActiveHolds.covering``, as everywhere; whether it stopped the
    clock, ``HoldRow.stops_clock``."""
    rows = [row for row in conn.execute(_PENDING_TIMED).all()
            if any(_stops(hold, row) for hold in released)]
    if not rows:
        return
    since = min(row.requested_at for row in rows)
    candidates = [from_mapping(HoldRow, r._mapping) for r in conn.execute(
        select(holds).where(holds.c.created_at < now, holds.c.until > since,
                            or_(holds.c.released_at.is_(None), holds.c.released_at > since)))]
    for row in rows:
        stood = [hold for hold in candidates if _stops(hold, row)]
        if any(hold.released_at is None and hold.until > now for hold in stood):
            continue  # another hold still stops its clock: the time is given back later
        start = now
        for hold in sorted(stood, key=lambda h: h.created_at, reverse=True):
            end = min(hold.released_at or hold.until, hold.until)
            if end >= start > hold.created_at:  # joins the run that ends now
                start = hold.created_at
        held = now - max(start, row.requested_at)
        if held.total_seconds() > 0:
            conn.execute(update(t.approvals).where(t.approvals.c.id == row.id)
                         .values(deadline=row.deadline + held))


def _stops(hold: HoldRow, row: Any) -> bool:
    """Whether ``hold`` covers the pending request ``row`` and stopped its clock."""
    return (ActiveHolds((hold,)).covering(entity_id=row.entity_id, playbook=row.playbook,
                                          functions=[row.function],
                                          decision_id=row.decision_id)
            and hold.stops_clock(row.deadline))


class HoldRepo(Repo):
    def place(self, *, target_type: TargetType, target: str, until: datetime, reason: str,
              actor: str) -> int:
        now = utcnow()
        with self.transaction(durable=True) as conn:
            hold_id, event = place(conn, target_type=target_type, target=target, until=until,
                                   reason=reason, actor=actor, now=now)
            self.record(conn, [event], now)
        return hold_id

    def release(self, *, target: str, actor: str) -> list[HoldRow]:
        """Release every active hold on ``target``, or when ``target`` is a hold's number
        (``#7``: an id of an entity may be all digits, a number is marked), that hold;
        returns them (as they were)."""
        now = utcnow()
        live = (holds.c.released_at.is_(None), holds.c.until > now)
        with self.transaction(durable=True) as conn:
            number = target[1:] if target.startswith("#") else ""
            match = (holds.c.id == int(number) if number.isascii() and number.isdigit()
                     else holds.c.target == target)
            found = [from_mapping(HoldRow, r._mapping) for r in conn.execute(
                select(holds).where(match, *live))]
            ids = [hold.id for hold in found]
            if ids:
                conn.execute(update(holds).where(holds.c.id.in_(ids))
                             .values(released_at=now, released_by=actor))
                _resume_clocks(conn, [replace(h, released_at=now) for h in found], now)
                self.record(conn, [Event(actor=actor, event="hold.released",
                                         body={"hold_id": h.id, "target": h.target})
                                   for h in found], now)
                notify(conn, WAKE)  # what it held can go on now
        return found

    def settle_lapsed(self, now: datetime | None = None) -> bool:
        """Release, as of its ``until``, every hold that ran out by itself (``hold.lapsed``
        by the clock, one ledger entry each): the time it stopped requests' clocks is
        given back as a release gives it (trial 28: it was not, and an ``on_timeout:
        approve`` request expired, and ran, at its un-held time). The SLA sweep and an
        answer's deadline check ask this first. True when one was settled."""
        now = now or utcnow()
        lapsed = (holds.c.released_at.is_(None), holds.c.until <= now)
        with self.reading() as conn:  # the usual case, read only: nothing ran out
            if conn.scalar(select(holds.c.id).where(*lapsed).limit(1)) is None:
                return False
        with self.transaction() as conn:
            found = [from_mapping(HoldRow, r._mapping) for r in conn.execute(
                select(holds).where(*lapsed).order_by(holds.c.until, holds.c.id))]
            for hold in found:  # each as released at its own end, in that order
                conn.execute(update(holds).where(holds.c.id == hold.id)
                             .values(released_at=hold.until, released_by=LAPSED))
                _resume_clocks(conn, [replace(hold, released_at=hold.until)], hold.until)
            self.record(conn, [Event(actor=LAPSED, event="hold.lapsed",
                                     body={"hold_id": h.id, "target": h.target,
                                           "until": h.until.isoformat()})
                               for h in found], now)
            if found:
                notify(conn, WAKE)  # what it held can go on now
        return bool(found)

    def list(self, *, active_only: bool = True, limit: int = 200) -> list[HoldRow]:
        query = select(holds).order_by(holds.c.id.desc()).limit(limit)
        if active_only:
            query = query.where(holds.c.released_at.is_(None), holds.c.until > utcnow())
        with self.reading() as conn:
            return [from_mapping(HoldRow, r._mapping) for r in conn.execute(query)]

    def active(self, now: datetime | None = None) -> ActiveHolds:
        with self.reading() as conn:
            return active(conn, now or utcnow())
