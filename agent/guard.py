"""The guard: every plan, from any planner, is checked before anyone is asked to approve it.

Checks, each reported with the step and field: the function exists; the tool exists and
is on the function's allow-list; the arguments validate against the tool's schema; the
arguments are within the function's limits, and the plan's steps within the function's
totals (what they add up to, per decision and per target); the DAG is acyclic (the
``Plan`` model enforces it). Model output is untrusted input: a plan that fails is
refused whole. A step's risk is at least its tool's (a plan may rate a step riskier,
never safer: the rating decides which approvals policy skips).
"""

from __future__ import annotations

from decisionops.agent.errors import InvalidInputError, NotFoundError, PlanRejected
from decisionops.agent.models import Plan, Step
from decisionops.agent.policy import Policies, total_problems
from decisionops.agent.ports import ToolPort

__all__ = ["check_plan", "check_step"]


def check_step(step: Step, tools: ToolPort, policies: Policies) -> tuple[Step, list[str]]:
    """Validate one step; return it with normalized arguments, and the problems found."""
    where = f"steps.{step.id}"
    try:
        policy = policies.get(step.function)
    except NotFoundError:
        return step, [f"{where}.function: unknown function {step.function!r}"]
    try:
        spec = tools.spec(step.tool)
    except NotFoundError:
        return step, [f"{where}.tool: unknown tool {step.tool!r}"]
    if step.tool not in policy.tools:
        return step, [f"{where}.tool: {step.tool} is not allowed for {step.function} "
                      f"(allowed: {', '.join(policy.tools)})"]
    try:
        arguments = tools.validate(step.tool, step.arguments)
    except InvalidInputError as exc:
        return step, [f"{where}.arguments.{exc.field or '?'}: {exc.message}"]
    problems = [f"{where}.arguments.{p}" for p in policy.limit_problems(step.tool, arguments)]
    # A plan may rate a step riskier than its tool, never less: who wrote the plan (a
    # model, a person) does not decide which approvals policy may skip.
    risk = max(step.risk, spec.risk, key=lambda r: r.rank)
    return step.model_copy(update={"arguments": arguments, "risk": risk}), problems


def check_plan(plan: Plan, tools: ToolPort, policies: Policies) -> Plan:
    """Return the plan with normalized arguments, or raise ``PlanRejected`` listing every problem."""
    if not plan.steps:
        raise PlanRejected("plan has no steps", problems=["steps: empty"])
    checked: list[Step] = []
    problems: list[str] = []
    for step in plan.steps:
        normalized, found = check_step(step, tools, policies)
        checked.append(normalized)
        problems.extend(found)
    if not problems:
        for function in sorted({s.function for s in checked}):
            problems += total_problems(
                policies.get(function).totals, [s for s in checked if s.function == function],
                key_of=lambda s: tools.spec(s.tool).target_of(s.arguments))
    if problems:
        raise PlanRejected(f"plan refused: {problems[0]}"
                           + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""),
                           problems=problems)
    return plan.model_copy(update={"steps": tuple(checked)})
