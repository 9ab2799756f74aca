"""Edit rules: what an approver may change in their function's part of a plan.

An edit names steps of the request only, and gives new values for some of their
arguments; the merged argument set must validate against the tool's schema and stay
within the function's limits and totals, like any plan. An argument that names what the
step acts on (the tool's *targets*: the account, the asset, the currency, the
recipient…) is locked: an approval binds it, so finance's approval can never pay a
different customer than the plan was for. To act on something else, reject or revise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decisionops.agent.errors import InvalidInputError, LockedArgumentError, ToolArgumentsError
from decisionops.agent.guard import check_step
from decisionops.agent.models import ApprovalRequest
from decisionops.agent.policy import Policies
from decisionops.agent.ports import ToolPort

__all__ = ["check_edit", "locked_arguments"]


def locked_arguments(request: ApprovalRequest, tools: ToolPort) -> dict[str, list[str]]:
    """Step id → the arguments an edit may not change."""
    return {s.id: [a for a in tools.spec(s.tool).targets if a in s.arguments]
            for s in request.steps}


def check_edit(request: ApprovalRequest, changes: Mapping[str, Mapping[str, Any]],
               tools: ToolPort, policies: Policies) -> dict[str, dict[str, Any]]:
    """The complete, normalized argument sets the edit would approve (every step of the
    request), or an error naming ``arguments.<step>.<argument>``: ``InvalidInputError``
    for an unknown step, ``LockedArgumentError`` for a changed target,
    ``ToolArgumentsError`` for a schema or limit problem."""
    steps = {s.id: s for s in request.steps}
    unknown = sorted(set(changes) - set(steps))
    if unknown:
        raise InvalidInputError(f"step {unknown[0]!r} is not part of this approval (its steps: "
                                f"{', '.join(steps)})", field=f"arguments.{unknown[0]}")
    approved: dict[str, dict[str, Any]] = {}
    for step_id, step in steps.items():
        change = dict(changes.get(step_id, {}))
        for name, value in change.items():
            # Taken as written: a value of another JSON type than the one proposed is
            # refused, not coerced (`amount=true` is not a credit of 1, nor "150" 150).
            proposed = step.arguments.get(name)
            if proposed is not None and _json_type(value) != _json_type(proposed):
                raise ToolArgumentsError(
                    f"must be a {_json_type(proposed)}, not a {_json_type(value)} "
                    f"({value!r})", field=f"arguments.{step_id}.{name}")
        merged = {**step.arguments, **change}
        for target in tools.spec(step.tool).targets:
            if target in change and change[target] != step.arguments.get(target) \
                    and _normalized(tools, step.tool, merged, target) != step.arguments.get(target):
                raise LockedArgumentError(
                    f"{target} is locked: it names what step {step_id} acts on "
                    f"({step.arguments.get(target)!r}), and an approval cannot redirect a step; "
                    "reject or revise the plan instead", field=f"arguments.{step_id}.{target}")
        checked, problems = check_step(step.model_copy(update={"arguments": merged}), tools,
                                       policies)
        if problems:
            where, _, message = problems[0].partition(": ")
            prefix = f"steps.{step_id}.arguments."
            argument = where.removeprefix(prefix) if where.startswith(prefix) else ""
            raise ToolArgumentsError(message + (f" (+{len(problems) - 1} more)"
                                                if len(problems) > 1 else ""),
                                     field=f"arguments.{step_id}" + (f".{argument}"
                                                                     if argument else ""))
        approved[step_id] = checked.arguments
    return approved


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "null" if value is None else type(value).__name__


def _normalized(tools: ToolPort, tool: str, arguments: dict[str, Any], name: str) -> Any:
    """``name`` as the tool's schema normalizes it (the same value written differently
    is not a change); a value that does not validate is a change."""
    try:
        return tools.validate(tool, arguments).get(name)
    except InvalidInputError:
        return object()
