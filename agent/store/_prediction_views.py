"""Predictions as a person sees them: each with its full fate (``outcome``) and the
reason for it, the decision it started, and the one write the needs-a-human queue
makes (``settle``). The rules of that queue (who may answer, what each answer means)
are ``agent.prediction_queue``'s; this module reads and writes rows.

The outcome of a prediction, in order:

- ``pending``: not triaged yet;
- ``drop``: triage dropped it (below threshold, low expected value, cooldown, an
  operator hold) or a person dismissed it;
- ``needs_human``: triage could not plan it (no playbook, no value at stake), or the
  decision it started ended ``needs_human`` (a refused plan, an unknown entity: the
  reason is the decision's);
- otherwise triage's verdict: ``act`` (with the decision it started) or ``hold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, literal, or_, select, update

from decisionops.agent.errors import ConflictError, NotFoundError
from decisionops.agent.models import (
    REPLANNED,
    DecisionStatus,
    TriageAction,
    TriageVerdict,
    utcnow,
)
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo
from decisionops.agent.store._decisions import seen_by
from decisionops.agent.store._hand_plans import HandPlanRow
from decisionops.agent.store._notify import WAKE, notify
from decisionops.agent.store._predictions import PredictionRepo
from decisionops.agent.store.ledger import Event

__all__ = ["OUTCOMES", "PredictionView", "PredictionViewRepo"]

OUTCOMES = ("pending", "act", "drop", "hold", "needs_human")
_P, _D, _H = t.predictions, t.decisions, t.hand_plans
_DECISION_NEEDS_HUMAN = and_(_D.c.status == DecisionStatus.NEEDS_HUMAN.value,
                             _P.c.triage_action != TriageAction.DROP.value)
_OUTCOME = case(
    (_P.c.triaged_at.is_(None), literal("pending")),
    (_DECISION_NEEDS_HUMAN, literal(TriageAction.NEEDS_HUMAN.value)),
    else_=_P.c.triage_action)
_VIEW = (select(_P.c.id, _P.c.kind, _P.c.entity_type, _P.c.entity_id, _P.c.model, _P.c.score,
                _P.c.value_at_stake, _P.c.value_at_stake_supplied, _P.c.expected_value,
                _P.c.triage_action, _P.c.triage_reason, _P.c.triage_detail, _P.c.playbook,
                _P.c.observed_at, _P.c.ingested_at, _P.c.triaged_at, _P.c.payload,
                _D.c.id.label("decision_id"), _D.c.status.label("decision_status"),
                _D.c.error.label("decision_error"), _OUTCOME.label("outcome"),
                _H.c.author.label("hand_author"), _H.c.hash.label("hand_hash"),
                _H.c.created_at.label("hand_at"))
         .select_from(_P.outerjoin(_D, _D.c.prediction_id == _P.c.id)
                      .outerjoin(_H, _H.c.prediction_id == _P.c.id)))


def _seen(query: Any, functions: Sequence[str] | None) -> Any:
    """What a viewer limited to ``functions`` (an approver) sees of the predictions: the
    queue (outcome ``needs_human``: every approver's to answer) and those whose decision
    they see (``seen_by``: its plan has a step of theirs); not what triage left without
    a decision (pending, dropped, held out), which is no function's: an operator's to
    look into (trial 19: every approver read every kind's drops, features and what-if
    plans). None: every prediction (an operator, an admin, the local CLI)."""
    if functions is None:
        return query
    return query.where(or_(TriageAction.NEEDS_HUMAN.value == _OUTCOME, seen_by(functions)))


@dataclass(frozen=True)
class PredictionView:
    """One prediction with its outcome and reason (``predictions list|show``, the API)."""

    id: str
    kind: str
    kind_as_received: str | None
    """The kind the source sent, when ``kind_aliases`` mapped it."""
    entity_type: str
    entity_id: str
    model: str
    score: float
    value_at_stake: float | None
    value_at_stake_source: str | None
    """``prediction`` (as received), ``supplied`` (a person, or the kind's default), or None."""
    expected_value: float | None
    outcome: str
    """pending, act, drop, hold or needs_human: the prediction's full fate."""
    reason: str | None
    detail: str | None
    playbook: str | None
    triage_action: str | None
    """Triage's own verdict (``outcome`` may differ: a decision that needs a human)."""
    triage_reason: str | None
    observed_at: datetime
    ingested_at: datetime
    triaged_at: datetime | None
    decision_id: str | None
    decision_status: str | None
    hand_plan: dict[str, Any] | None = None
    """Who planned it by hand, when, and the plan's hash (``author``, ``at``, ``hash``)."""
    features: dict[str, Any] | None = None
    """What the model was given, as received (joined from the inputs for a model-server
    body)."""
    explanation: dict[str, Any] | None = None
    """The model's attribution per feature, as received."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _view(row: Any) -> PredictionView:
    m = row._mapping
    if m["outcome"] == TriageAction.NEEDS_HUMAN.value and m["decision_id"] is not None:
        reason = "decision_needs_human"
        detail = m["decision_error"] or f"decision {m['decision_id']} needs a human plan"
    else:
        reason, detail = m["triage_reason"], m["triage_detail"]
    own, supplied = m["value_at_stake"], m["value_at_stake_supplied"]
    payload = m["payload"] or {}
    return PredictionView(
        id=m["id"], kind=m["kind"], kind_as_received=payload.get("kind_as_received"),
        entity_type=m["entity_type"], entity_id=m["entity_id"], model=m["model"],
        score=m["score"], value_at_stake=own if own is not None else supplied,
        value_at_stake_source=("prediction" if own is not None else
                               "supplied" if supplied is not None else None),
        expected_value=m["expected_value"], outcome=m["outcome"], reason=reason, detail=detail,
        playbook=m["playbook"], triage_action=m["triage_action"],
        triage_reason=m["triage_reason"],
        observed_at=m["observed_at"], ingested_at=m["ingested_at"],
        triaged_at=m["triaged_at"], decision_id=m["decision_id"],
        decision_status=m["decision_status"],
        hand_plan=(None if m["hand_author"] is None else
                   {"author": m["hand_author"], "hash": m["hand_hash"], "at": m["hand_at"]}),
        features=payload.get("features") or None,
        explanation=payload.get("explanation") or None)


def _verdict(verdict: TriageVerdict, now: datetime) -> dict[str, Any]:
    """A verdict as the prediction's columns."""
    return {"triage_action": verdict.action.value, "triage_reason": verdict.reason,
            "triage_detail": verdict.detail, "playbook": verdict.playbook,
            "expected_value": verdict.expected_value, "triaged_at": now}


def _take(conn: Any, seen: PredictionView, values: dict[str, Any]) -> None:
    """Write ``values`` to the prediction provided it still has the verdict ``seen`` read
    (else ``ConflictError``: someone answered first, or the loop moved it on)."""
    changed = conn.execute(update(_P).where(
        _P.c.id == seen.id, _P.c.triage_action == seen.triage_action,
        _P.c.triage_reason == seen.triage_reason).values(**values)).rowcount
    if changed != 1:
        raise ConflictError(f"prediction {seen.id} changed since it was read (another "
                            "answer, or the loop); read it again", field="prediction_id")


class PredictionViewRepo(Repo):
    def __init__(self, db: Any, predictions: PredictionRepo) -> None:
        super().__init__(db)
        self._predictions = predictions

    def list(self, *, outcome: str | None = None, kind: str | None = None,
             entity_id: str | None = None, limit: int = 50, oldest_first: bool = False,
             functions: Sequence[str] | None = None) -> list[PredictionView]:
        """Predictions with their outcome, newest ingested first (``oldest_first``: the
        queue's order); ``functions``: only what a viewer limited to them sees
        (``_seen``)."""
        query = _seen(_VIEW, functions)
        if outcome is not None:
            query = query.where(outcome == _OUTCOME)
        if kind is not None:
            query = query.where(_P.c.kind == kind)
        if entity_id is not None:
            query = query.where(_P.c.entity_id == entity_id)
        order = ((_P.c.ingested_at, _P.c.observed_at, _P.c.id) if oldest_first
                 else (_P.c.ingested_at.desc(), _P.c.observed_at.desc(), _P.c.id.desc()))
        with self.reading() as conn:
            return [_view(r) for r in conn.execute(query.order_by(*order).limit(limit))]

    def get(self, prediction_id: str, *, functions: Sequence[str] | None = None
            ) -> PredictionView:
        """One prediction; one a viewer limited to ``functions`` does not see is not
        found, as an unknown id (no hint that it exists)."""
        with self.reading() as conn:
            row = conn.execute(_seen(_VIEW, functions).where(_P.c.id == prediction_id)).first()
        if row is None:
            raise NotFoundError(f"no prediction {prediction_id!r}", field="prediction_id")
        return _view(row)

    def settle(self, seen: PredictionView, verdict: TriageVerdict, *, actor: str, event: str,
               body: dict[str, Any], value_at_stake: float | None = None,
               hand_plan: HandPlanRow | None = None) -> None:
        """A person's answer from the queue: the prediction's new verdict (and a value at
        stake they supplied), with one ledger entry ``event`` by ``actor``, provided the
        row still has the verdict ``seen`` read (else ``ConflictError``: someone answered
        first, or the loop moved it on). ``hand_plan``: the plan a person wrote, stored
        beside the prediction in the same transaction. An ``act`` verdict wakes the
        workers."""
        now = utcnow()
        values = _verdict(verdict, now)
        if value_at_stake is not None:
            values["value_at_stake_supplied"] = value_at_stake
        with self.transaction() as conn:
            _take(conn, seen, values)
            self._answered(conn, seen.id, verdict, actor=actor, event=event, body=body,
                           hand_plan=hand_plan, now=now)
            if verdict.action in (TriageAction.ACT, TriageAction.HOLD):  # decided
                self._predictions.supersede_queued(conn, [seen.id], actor=actor, now=now)
            if verdict.action == TriageAction.ACT:
                notify(conn, WAKE)

    def replan(self, seen: PredictionView, follow_up: Any, verdict: TriageVerdict, *,
               source: str, actor: str, event: str, body: dict[str, Any],
               hand_plan: HandPlanRow | None = None) -> None:
        """A person plans again a prediction whose decision ended ``needs_human``: in one
        transaction, ``follow_up`` (the same prediction under a new id, an
        ``agent.sources.PredictionRow``) is stored as intake stores one (its own batch
        entry, by ``actor``, from ``source``) with ``verdict``, its hand plan beside it,
        and ``seen`` leaves the queue (``drop``, reason ``replanned``, naming the follow-up); one
        ledger entry ``event`` with ``replans``. Provided ``seen`` still has the verdict
        it was read with and its decision nothing executed, else ``ConflictError``."""
        now = utcnow()
        with self.transaction() as conn:
            if conn.scalar(select(func.count()).select_from(t.executions).where(
                    t.executions.c.decision_id == seen.decision_id)):
                raise ConflictError(
                    f"decision {seen.decision_id} of prediction {seen.id} executed steps; "
                    "planning it again could repeat them: dismiss it, and send what is left "
                    "as a new prediction", field="prediction_id")
            supplied = conn.scalar(select(_P.c.value_at_stake_supplied)
                                   .where(_P.c.id == seen.id))
            _take(conn, seen, {"triage_action": TriageAction.DROP.value,
                               "triage_reason": REPLANNED, "triaged_at": now,
                               "triage_detail": f"planned again by {actor} as {follow_up.id}"})
            if conn.scalar(select(_P.c.id).where(_P.c.id == follow_up.id)) is not None:
                raise ConflictError(f"prediction {follow_up.id} is stored already; read "
                                    f"{seen.id} again", field="prediction_id")
            self._predictions.insert_new(conn, [follow_up], source=source,
                                         actor=actor, now=now)
            conn.execute(update(_P).where(_P.c.id == follow_up.id).values(
                **_verdict(verdict, now),
                value_at_stake_supplied=supplied))  # a value a person gave it stands
            self._answered(conn, follow_up.id, verdict, actor=actor, event=event,
                           body={"replans": seen.id, **body}, hand_plan=hand_plan, now=now)
            notify(conn, WAKE)

    def _answered(self, conn: Any, prediction_id: str, verdict: TriageVerdict, *, actor: str,
                  event: str, body: dict[str, Any], hand_plan: HandPlanRow | None,
                  now: datetime) -> None:
        """A queue answer's hand plan (if any) and its one ledger entry."""
        if hand_plan is not None:
            conn.execute(insert(t.hand_plans).values(asdict(hand_plan)))
        self.record(conn, [Event(actor=actor, event=event, body={
            "prediction_id": prediction_id, "action": verdict.action.value,
            "reason": verdict.reason, "playbook": verdict.playbook, **body})], now)

    def count(self, outcome: str) -> int:
        with self.reading() as conn:
            return int(conn.scalar(select(func.count()).select_from(
                _P.outerjoin(_D, _D.c.prediction_id == _P.c.id))
                .where(outcome == _OUTCOME)) or 0)
