"""Plans written by hand: what a person's steps become, and the planner that uses them.

A person in the needs-a-human queue may write a prediction's plan themselves
(``PredictionQueue.plan_by_hand`` owns who may and what it must pass). This module
turns what they wrote (YAML or JSON text, a list of steps or a mapping with ``steps``,
``rationale`` and ``all_or_nothing``) into a ``Plan`` with planner ``hand`` — the same
``Step`` model the planners produce — and provides ``HandPlanner``, which drafts a
decision's first version from the stored hand plan and leaves every other prediction
to the configured planner.

No planner revises a person's plan: asked for version 2 (an approver answered revise),
``HandPlanner`` drafts nothing, and the decision ends ``needs_human`` with the feedback
in its reason, back in the queue where a person sees it and plans it again (a follow-up
prediction, ``PredictionQueue``) or dismisses it. The guard, the target check
and routing treat a hand plan like any other; nothing here decides about approval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from decisionops.agent._yaml import loads
from decisionops.agent.errors import InvalidInputError, pydantic_message
from decisionops.agent.models import Plan, decision_id_for
from decisionops.agent.planner import Draft, Planner, PlanningRecord, PlanRequest

__all__ = ["HAND", "MAX_STEPS", "HandPlanner", "hand_plan", "parse_steps"]

HAND = "hand"
"""The planner name of a plan written by hand (``decisions show``, ``plan explain``)."""
MAX_STEPS = 50
_MAX_TEXT = 100_000
_PLAN_FIELDS = {"steps", "rationale", "all_or_nothing"}


def parse_steps(text: str) -> Any:
    """YAML or JSON text (JSON is YAML) as data; a parse error names the field ``steps``."""
    if len(text) > _MAX_TEXT:
        raise InvalidInputError(f"at most {_MAX_TEXT:,} characters", field="steps")
    try:
        return loads(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInputError(f"not valid YAML or JSON{where}: "
                                f"{getattr(exc, 'problem', None) or exc}", field="steps") from exc


def hand_plan(prediction_id: str, spec: Any, *, author: str) -> Plan:
    """The first plan version of ``prediction_id``'s decision from what ``author`` wrote:
    a list of steps, or a mapping with ``steps`` (and optionally ``rationale`` and
    ``all_or_nothing``). Not guarded yet. Bad input raises ``InvalidInputError`` on
    ``steps`` naming the step and field."""
    if isinstance(spec, list):
        spec = {"steps": spec}
    if not isinstance(spec, dict) or "steps" not in spec:
        raise InvalidInputError("give a list of steps, or a mapping with 'steps' (and "
                                "optionally 'rationale', 'all_or_nothing')", field="steps")
    unknown = sorted(str(k) for k in set(spec) - _PLAN_FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown field(s) {', '.join(unknown)}; a hand plan has "
                                + ", ".join(sorted(_PLAN_FIELDS)), field="steps")
    steps = spec["steps"]
    if not isinstance(steps, list) or not steps:
        raise InvalidInputError("must be a non-empty list of steps", field="steps")
    if len(steps) > MAX_STEPS:
        raise InvalidInputError(f"at most {MAX_STEPS} steps", field="steps")
    rationale = spec.get("rationale") or ""
    if not isinstance(rationale, str):
        raise InvalidInputError("rationale must be text", field="steps")
    said = f"written by hand by {author}" + (f": {rationale}" if rationale else "")
    try:
        return Plan.model_validate({
            "decision_id": decision_id_for(prediction_id), "version": 1, "planner": HAND,
            "playbook": None, "steps": steps, "rationale": said,
            "all_or_nothing": spec.get("all_or_nothing", False)})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'plan'}: {pydantic_message(e)}"
                    for e in exc.errors(include_url=False)]
        raise InvalidInputError("; ".join(problems[:10])
                                + (f" (+{len(problems) - 10} more)" if len(problems) > 10
                                   else ""), field="steps") from exc


HandPlanOf = Callable[[str], Any]
"""prediction id → its stored hand plan (``agent.store.HandPlanRow``) or None."""


class HandPlanner:
    """The configured planner, except for predictions a person planned by hand."""

    def __init__(self, hand_plan_of: HandPlanOf, planner: Planner) -> None:
        self._hand_plan_of = hand_plan_of
        self._planner = planner
        self.name = planner.name
        self.deterministic = planner.deterministic

    @property
    def ready(self) -> bool:
        return self._planner.ready

    def warm(self) -> None:
        self._planner.warm()

    def stop(self) -> None:
        self._planner.stop()

    def close(self) -> None:
        getattr(self._planner, "close", lambda: None)()

    def draft(self, request: PlanRequest) -> Draft:
        row = self._hand_plan_of(request.prediction.id)
        if row is None or row.body.get("decision_id") != request.decision_id:
            return self._planner.draft(request)  # (an eval drafts under its own ids)
        written = f"written by hand by {row.author} at {row.created_at:%Y-%m-%d %H:%M} UTC"
        if request.version == 1:
            plan = Plan.model_validate(row.body)
            if plan.hash != row.hash:
                return Draft(plan=None, record=PlanningRecord(
                    planner=HAND, fallback=f"the stored plan {written} no longer matches its "
                                           f"hash {row.hash[:12]}; it is not used"))
            return Draft(plan=plan, record=PlanningRecord(
                planner=HAND, notes=[f"{written} (hash {row.hash[:12]})"]))
        # A new version is asked for when an approver asked to revise (with feedback) or
        # when the world changed under the approved plan (its previews moved: no feedback).
        why = (f"revise feedback: {'; '.join(request.feedback)}" if request.feedback else
               "the world changed since it was approved (what its steps would change "
               "moved), and it cannot be re-drafted")
        return Draft(plan=None, record=PlanningRecord(
            planner=HAND, fallback=f"plan {written}; no planner revises a person's plan, so "
                                   f"it goes back to a person: {why}"))
