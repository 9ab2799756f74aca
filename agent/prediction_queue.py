"""The needs-a-human queue: predictions the loop could not plan, and a person's answers.

A prediction is in the queue when its outcome is ``needs_human`` (``agent.store``'s
``PredictionView``): triage found no playbook for its kind or no value at stake where
the playbook needs one, or the decision it started ended ``needs_human``. A registered
person (approver, operator or admin) answers it in one of four ways, each recorded as
one ledger entry under their name:

- ``pick``: plan it with a playbook they name: the prediction becomes actionable with
  that playbook and the workers start its decision as they start any other (``claim_new``);
- ``plan_by_hand``: write the plan's steps themselves (``agent.hand_plans``): the plan
  must pass the guard now (``agent.guard.check_plan``, the function every plan passes;
  a refused one is refused here with the guard's problems, changing nothing), is
  stored beside the prediction (author, time, hash) and the prediction becomes
  actionable, reason ``planned_by_hand``; the workers start its decision, whose first
  plan version is this one. The target check, routing and approval are those of any
  plan, and the author counts as the plan's requester for four-eyes;
- ``supply_value``: give the value at stake it lacks: it is triaged again with the same
  rules (``Runtime.verdicts``), and the value is kept beside the prediction;
- ``dismiss``: no action, with their reason: the outcome becomes ``drop``, reason
  ``dismissed``, detail ``dismissed by <name>: <reason>``.

This module owns those rules; the CLI, the API, the inbox and the chat only translate.
A decision that already exists is not started again (its id derives from the
prediction's). A prediction whose decision ended ``needs_human`` (a revised hand plan, an
unknown entity, a failed planner) is planned again by ``pick`` or ``plan_by_hand`` as a
follow-up: the same prediction under the id ``<first id>+r<n>``, stored as intake stores
one, with the answer's verdict, while the first leaves the queue (``drop``, reason
``replanned``, naming it), in one transaction (``PredictionViewRepo.replan``). Its
decision is routed and approved as any other; the requesters of the first are its
requesters too (four-eyes). One whose decision executed a step is only dismissed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from decisionops.agent.errors import (
    ConflictError,
    InvalidInputError,
    PermissionDenied,
    PlanRejected,
    pydantic_message,
)
from decisionops.agent.hand_plans import hand_plan, parse_steps
from decisionops.agent.models import (
    Plan,
    Prediction,
    TriageAction,
    TriageVerdict,
    ValueAtStake,
    decision_id_for,
    utcnow,
)
from decisionops.agent.playbooks import Playbook, PlaybookBook
from decisionops.agent.sources import PredictionRow
from decisionops.agent.store import HandPlanRow, PredictionView, Store
from decisionops.agent.triage import in_cooldown

__all__ = ["ANSWERING_ROLES", "PredictionQueue", "QueueUser"]

ANSWERING_ROLES = ("approver", "operator", "admin")
_REPLAN = "replan:"
"""The source of a follow-up prediction: ``replan:<the first one's id>``."""
_MAX_ID = 200
_MAX_REASON = 500
_VALUE_AT_STAKE: TypeAdapter[float] = TypeAdapter(ValueAtStake)

Retriage = Callable[[Sequence[Prediction]], list[TriageVerdict]]
Guard = Callable[[Plan], Plan]
"""The guard every plan passes (``agent.guard.check_plan`` with the tools and policies)."""


@dataclass(frozen=True)
class QueueUser:
    """Who answers, as their channel established it (a registered user, never a bare name)."""

    name: str
    role: str
    channel: str


class PredictionQueue:
    def __init__(self, store: Store, playbooks: PlaybookBook, retriage: Retriage,
                 guard: Guard, *, cli_answers: bool = True) -> None:
        self._store = store
        self._playbooks = playbooks
        self._retriage = retriage
        self._guard = guard
        self._cli_answers = cli_answers
        """Whether a channel that only names its user (the CLI's ``--as``) may answer;
        the ``cli_answers`` setting, as for approvals."""

    # ------------------------------------------------------------------ reads

    def list(self, limit: int = 50) -> list[PredictionView]:
        """The queue, oldest first."""
        return self._store.prediction_views.list(outcome=TriageAction.NEEDS_HUMAN.value,
                                                 limit=limit, oldest_first=True)

    def size(self) -> int:
        return self._store.prediction_views.count(TriageAction.NEEDS_HUMAN.value)

    def registered(self, name: str, *, channel: str, field: str = "as") -> QueueUser:
        """The registered, enabled user ``name`` (for channels that name one, the CLI)."""
        if not self._cli_answers:
            raise PermissionDenied("this deployment takes answers through the inbox or the "
                                   "API, where a credential proves who answers (cli_answers)")
        try:  # dana for dana@finance when only one is meant, as --as reads it everywhere
            user = self._store.users.named(name)
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message.removeprefix("name: "), field=field) from None
        if user is None:
            raise InvalidInputError(f"{name!r} is not a registered user; add one with "
                                    f"decisionops users add {name} --role operator",
                                    field=field)
        if user["disabled_at"] is not None:
            raise InvalidInputError(f"user {name!r} is disabled", field=field)
        return QueueUser(user["name"], user["role"], channel)

    # ------------------------------------------------------------------ answers

    def pick(self, prediction_id: str, playbook: str, *, by: QueueUser,
             note: str = "") -> PredictionView:
        """Plan the prediction with ``playbook``; the workers start its decision."""
        note = _text(note, "note", required=False)
        seen = self._open(prediction_id, by, verb="pick a playbook for", decided_ok=True)
        if playbook not in self._playbooks.playbooks:
            raise InvalidInputError(f"no playbook {playbook!r}; known: "
                                    + ", ".join(sorted(self._playbooks.playbooks)),
                                    field="playbook")
        target, follow_up, source = self._target(seen)
        detail = (f"playbook {playbook} picked by {by.name}" + (f": {note}" if note else "")
                  + _again(seen) + self._cooldown(seen, self._playbooks.playbooks[playbook]))
        verdict = TriageVerdict(prediction_id=target, action=TriageAction.ACT, reason="picked",
                                detail=detail, playbook=playbook,
                                expected_value=seen.expected_value)
        body = {"channel": by.channel, "decision_id": decision_id_for(target), "note": note}
        if follow_up is None:
            self._store.prediction_views.settle(seen, verdict, actor=by.name,
                                                event="prediction.picked", body=body)
        else:
            self._store.prediction_views.replan(seen, follow_up, verdict, source=source,
                                                actor=by.name,
                                                event="prediction.picked", body=body)
        return self._store.prediction_views.get(target)

    def plan_by_hand(self, prediction_id: str, steps: str | list[Any] | dict[str, Any], *,
                     by: QueueUser, note: str = "") -> PredictionView:
        """Plan the prediction with the steps ``by`` wrote (YAML/JSON text, a list of
        steps, or a mapping with ``steps``); the workers start its decision from them."""
        note = _text(note, "note", required=False)
        seen = self._open(prediction_id, by, verb="plan by hand", decided_ok=True)
        target, follow_up, source = self._target(seen)
        plan = hand_plan(target, parse_steps(steps) if isinstance(steps, str) else steps,
                         author=by.name)
        try:
            plan = self._guard(plan)
        except PlanRejected as exc:
            raise InvalidInputError("the guard refuses this plan: " + "; ".join(exc.problems),
                                    field="steps") from exc
        row = HandPlanRow(prediction_id=target, author=by.name, hash=plan.hash,
                          body=plan.model_dump(mode="json"), created_at=utcnow())
        detail = (f"planned by hand by {by.name}: {len(plan.steps)} step(s) for "
                  + ", ".join(sorted({s.function for s in plan.steps}))
                  + (f"; {note}" if note else "") + _again(seen) + self._cooldown(seen))
        verdict = TriageVerdict(prediction_id=target, action=TriageAction.ACT,
                                reason="planned_by_hand", detail=detail, playbook=None,
                                expected_value=seen.expected_value)
        body = {"channel": by.channel, "decision_id": decision_id_for(target),
                "plan_hash": plan.hash, "note": note,
                "steps": [f"{s.function}:{s.id}:{s.tool}" for s in plan.steps]}
        if follow_up is None:
            self._store.prediction_views.settle(seen, verdict, actor=by.name,
                                                event="prediction.planned_by_hand", body=body,
                                                hand_plan=row)
        else:
            self._store.prediction_views.replan(seen, follow_up, verdict, source=source,
                                                actor=by.name,
                                                event="prediction.planned_by_hand", body=body,
                                                hand_plan=row)
        return self._store.prediction_views.get(target)

    def supply_value(self, prediction_id: str, value_at_stake: float, *,
                     by: QueueUser) -> PredictionView:
        """Give the value at stake the prediction lacks and triage it again."""
        try:
            value_at_stake = _VALUE_AT_STAKE.validate_python(value_at_stake)
        except ValidationError as exc:
            raise InvalidInputError(pydantic_message(exc.errors()[0]), field="value_at_stake") from None
        seen = self._open(prediction_id, by, verb="supply a value for")
        if seen.triage_reason != "missing_value":
            raise InvalidInputError(
                f"prediction {seen.id} does not wait for a value ({seen.reason}: "
                f"{seen.detail}); pick a playbook or dismiss it", field="value_at_stake")
        prediction = self._store.predictions.get(seen.id).model_copy(
            update={"value_at_stake": float(value_at_stake)})
        (verdict,) = self._retriage([prediction])
        verdict = verdict.model_copy(update={
            "detail": f"{verdict.detail} (value_at_stake {value_at_stake:,.0f} supplied by "
                      f"{by.name})"})
        self._store.prediction_views.settle(
            seen, verdict, actor=by.name, event="prediction.value_supplied",
            body={"channel": by.channel, "value_at_stake": float(value_at_stake)},
            value_at_stake=float(value_at_stake))
        return self._store.prediction_views.get(seen.id)

    def dismiss(self, prediction_id: str, reason: str, *, by: QueueUser) -> PredictionView:
        """No action, for ``reason``: the outcome becomes ``drop``."""
        reason = _text(reason, "reason", required=True)
        seen = self._open(prediction_id, by, verb="dismiss", decided_ok=True)
        verdict = TriageVerdict(prediction_id=seen.id, action=TriageAction.DROP,
                                reason="dismissed", detail=f"dismissed by {by.name}: {reason}",
                                playbook=seen.playbook, expected_value=seen.expected_value)
        self._store.prediction_views.settle(
            seen, verdict, actor=by.name, event="prediction.dismissed",
            body={"channel": by.channel, "why": reason, "decision_id": seen.decision_id})
        return self._store.prediction_views.get(seen.id)

    # ------------------------------------------------------------------ rules

    def _cooldown(self, seen: PredictionView, playbook: Playbook | None = None) -> str:
        """What a person's plan overrides (they decide; it is said): that the loop
        already decided this reading (acted on, or held out, a prediction of its kind on
        its entity observed no earlier), and the entity's cooldown for the kind of the
        action (``playbook``'s, or the playbook triage gives the prediction) when the
        loop acted on it for that kind too recently (trial 25: a copy of an acted reading,
        and a pick with another kind's playbook, acted again without a word)."""
        playbook = playbook or self._playbooks.for_prediction(
            self._store.predictions.get(seen.id))
        entity, notes = seen.entity_id, []
        last = self._store.predictions.last_acted(seen.kind, [entity],
                                                  besides=[seen.id]).get(entity)
        for at, what in ((last and last.observed, "acted on"),
                         (last and last.held, "held out as control")):
            if at is not None and at >= seen.observed_at:
                notes.append(f"this reading was already {what}: a {seen.kind} prediction on "
                             f"{entity} observed {at:%Y-%m-%d %H:%M:%S}Z")
                break
        if playbook is not None:
            if playbook.kind != seen.kind:
                last = self._store.predictions.last_acted(playbook.kind, [entity]).get(entity)
            if why := in_cooldown(playbook.kind, entity, playbook, last, utcnow()):
                notes.append(f"inside the cooldown: {why}")
        return "".join(f" ({note})" for note in notes)

    def _target(self, seen: PredictionView) -> tuple[str, PredictionRow | None, str]:
        """The prediction an answer plans: ``seen`` itself, or, when its decision ended
        ``needs_human`` (a decision is not started twice), its follow-up: the same
        prediction under the next free id ``<id>+r<n>`` (of the first one's id, however
        often it was planned again), stored by ``replan`` from ``replan:<that id>``."""
        if seen.decision_id is None:
            return seen.id, None, ""
        row = self._store.predictions.row(seen.id) or {}
        source = str(row.get("source") or "")
        base = source.removeprefix(_REPLAN) if source.startswith(_REPLAN) else seen.id
        for n in range(2, 10_000):
            suffix = f"+r{n}"
            candidate = base[:_MAX_ID - len(suffix)] + suffix
            if self._store.predictions.row(candidate) is None:
                prediction = self._store.predictions.get(seen.id)
                return (candidate, PredictionRow.of(prediction.model_copy(update={"id": candidate})),
                        _REPLAN + base)
        raise ConflictError(f"prediction {seen.id} was planned again too often",
                            field="prediction_id")

    def _open(self, prediction_id: str, by: QueueUser, *, verb: str,
              decided_ok: bool = False) -> PredictionView:
        if by.role not in ANSWERING_ROLES:
            raise PermissionDenied(f"{by.name} ({by.role}) may not {verb} a prediction; "
                                   f"the queue is answered by {', '.join(ANSWERING_ROLES)}")
        seen = self._store.prediction_views.get(prediction_id)
        if seen.outcome != TriageAction.NEEDS_HUMAN.value:
            raise ConflictError(f"prediction {seen.id} does not need a human: its outcome is "
                                f"{seen.outcome} ({seen.reason or 'not triaged yet'})",
                                field="prediction_id")
        if seen.decision_id is not None and not decided_ok:
            raise ConflictError(
                f"prediction {seen.id} already started decision {seen.decision_id} "
                f"({seen.decision_status}: {seen.detail}); pick a playbook or plan it by hand "
                "to plan it again (as a follow-up prediction), or dismiss it",
                field="prediction_id")
        return seen


def _again(seen: PredictionView) -> str:
    return ("" if seen.decision_id is None else
            f" (planned again: {seen.id}'s decision {seen.decision_id} needed a person: "
            f"{seen.detail})")


def _text(value: str, field: str, *, required: bool) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInputError("must say why (it is recorded and shown)", field=field)
    if len(value) > _MAX_REASON:
        raise InvalidInputError(f"at most {_MAX_REASON} characters", field=field)
    return value
