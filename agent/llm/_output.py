"""The plan a model returns: its schema (for ``submit_plan`` and JSON-schema output),
strict parsing, and conversion into a ``Plan``.

Every field is required and unknown fields are refused, so a reply that leaves out an
argument set is an error, never a plan with defaulted arguments. ``NaN`` and
``Infinity`` are refused while parsing. Risk is not the model's to say: the planner sets
it from the tool and the playbook, over the whole plan (a step's risk depends on which
playbook step it is matched to; see ``_bounds``).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from decisionops.agent.errors import PlanRejected, pydantic_message
from decisionops.agent.llm._errors import LLMOutputError
from decisionops.agent.models import Plan, Risk, Step

__all__ = ["SUBMIT_TOOL", "PlanOut", "StepOut", "parse_plan", "plan_schema", "to_plan",
           "tool_name"]

SUBMIT_TOOL = "submit_plan"
_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Money = Annotated[float, Field(ge=0, le=1e9), AfterValidator(_finite)]


class StepOut(BaseModel):
    """One step as the model writes it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Unique lowercase snake_case step id.", max_length=64)
    function: str = Field(description="The business function that carries the step out.",
                          max_length=64)
    tool: str = Field(description="An action tool of the catalogue, e.g. crm.create_task.",
                      max_length=80)
    arguments: dict[str, Any] = Field(description="The tool's arguments, complete.")
    depends_on: list[str] = Field(description="Ids of steps that must finish first.",
                                  max_length=20)
    rationale: str = Field(description="Why this step, in one or two sentences.",
                           max_length=1000)
    expected_cost: Money
    expected_value: Money


class PlanOut(BaseModel):
    """A whole plan as the model writes it."""

    model_config = ConfigDict(extra="forbid")
    rationale: str = Field(description="Why this plan; mention any data you ignored.",
                           max_length=2000)
    steps: list[StepOut] = Field(min_length=1, max_length=20)


@functools.cache
def _plan_schema() -> str:
    return json.dumps(PlanOut.model_json_schema())


def plan_schema() -> dict[str, Any]:
    """JSON schema of ``PlanOut`` (parameters of ``submit_plan`` and the JSON-schema
    format): a fresh copy of a schema built once (building it costs more than a draft's
    other work)."""
    return json.loads(_plan_schema())


def tool_name(name: str) -> str:
    """Accept the OpenAI-safe spelling (``crm__create_task``) for a tool name."""
    return name.replace("__", ".") if "." not in name else name


def _reject_constant(value: str) -> float:
    raise ValueError(f"{value} is not a number JSON allows")


def parse_plan(text: str | None) -> PlanOut:
    """Parse a model's plan; ``LLMOutputError`` names every problem."""
    if text is None or not text.strip():
        raise LLMOutputError("the reply was empty", problems=["(reply): empty"])
    fenced = _FENCED.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise LLMOutputError(f"not valid JSON: {exc}", problems=[f"(reply): not valid JSON: {exc}"]
                             ) from None
    try:
        return PlanOut.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(plan)'}: {pydantic_message(e)}"
                    for e in exc.errors(include_url=False)]
        raise LLMOutputError(f"the plan does not fit the schema: {'; '.join(problems[:5])}",
                             problems=problems) from None


def to_plan(out: PlanOut, *, decision_id: str, version: int, planner: str,
            playbook: str | None, all_or_nothing: bool,
            risk_for: Callable[[Plan], Mapping[str, Risk]]) -> Plan:
    """Build the ``Plan``; a shape the domain model refuses (bad id, unknown dependency,
    cycle) raises ``PlanRejected`` so it can go back to the model as a repair.
    ``risk_for`` gives every step's risk (by id) from the whole plan; a step it leaves
    out is ``high``."""
    problems: list[str] = []
    steps: list[Step] = []
    for index, item in enumerate(out.steps):
        tool = tool_name(item.tool)
        try:
            steps.append(Step(id=item.id, function=item.function, tool=tool,
                              arguments=item.arguments, depends_on=tuple(item.depends_on),
                              risk=Risk.HIGH, rationale=item.rationale,
                              expected_cost=item.expected_cost,
                              expected_value=item.expected_value))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                field = ".".join(str(p) for p in error["loc"])
                problems.append(f"steps[{index}].{field}: {pydantic_message(error)}")
    if problems:
        raise PlanRejected(f"plan refused: {problems[0]}", problems=problems)
    try:
        plan = Plan(decision_id=decision_id, version=version, planner=planner, playbook=playbook,
                    steps=tuple(steps), all_or_nothing=all_or_nothing, rationale=out.rationale)
    except ValidationError as exc:
        problems = [f"steps: {pydantic_message(e)}"
                    for e in exc.errors(include_url=False)]
        raise PlanRejected(f"plan refused: {problems[0]}", problems=problems) from None
    found = risk_for(plan)
    return plan.model_copy(update={"steps": tuple(
        s.model_copy(update={"risk": found.get(s.id, Risk.HIGH)}) for s in plan.steps)})
