"""Impact preview: what each step would change, read before anyone approves it, and
whether the world still looks that way when the step is about to run.

A tool declares its preview (``agent.ports.PreviewSpec``): a read-only tool called with
the step's arguments, whose result says what the call would change (the account's
issued credits now and after, the stock at both sites, the asset's scheduled downtime),
and the fields of it to ``watch``. Previews are read when a plan version is routed and
stored with each approval request (``ApprovalRequest.previews``); their hash
(``ApprovalRequest.preview_hash``) binds an answer to what the approver saw. Before the first step of
that plan version runs, the watched fields are read again (``drift``): a number that
moved beyond the tool's tolerance, or anything else that changed, means the world
changed, and the plan version goes back to its approvers instead of running.

A tool without a preview shows none (nothing is checked for it). A preview that fails
(the system is down) is stored as that failure, shown to the approver, and not checked
again at execution: the step's own call is then the authority, as for a tool without
one. Pure but for the tool calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from decisionops.agent.errors import DecisionOpsError
from decisionops.agent.models import Step
from decisionops.agent.ports import PreviewSpec, ToolPort

__all__ = ["drift", "preview_rows", "preview_spec", "preview_steps", "preview_summary",
           "read_preview"]


def preview_spec(tools: ToolPort, tool: str) -> PreviewSpec | None:
    """The preview ``tool`` declares; None when it declares none or is not registered."""
    try:
        return tools.spec(tool).preview
    except (DecisionOpsError, KeyError):
        return None


def read_preview(tools: ToolPort, step: Step) -> dict[str, Any] | None:
    """The preview of one step as stored: ``{"tool", "result"}`` or ``{"tool", "error"}``;
    None when its tool declares none."""
    spec = preview_spec(tools, step.tool)
    if spec is None:
        return None
    arguments = spec.arguments_for(step.arguments)
    if arguments is None:
        return {"tool": spec.tool, "error": "the step lacks an argument the preview needs"}
    try:
        receipt = tools.call(spec.tool, arguments, idempotency_key=f"preview:{step.id}")
    except DecisionOpsError as exc:
        return {"tool": spec.tool, "error": exc.message[:300]}
    return {"tool": spec.tool, "result": receipt.result}


def preview_steps(tools: ToolPort, steps: Iterable[Step]) -> dict[str, dict[str, Any]]:
    """step id → its preview, for the steps whose tool declares one."""
    out = {}
    for step in steps:
        found = read_preview(tools, step)
        if found is not None:
            out[step.id] = found
    return out


def _field(result: Mapping[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _moved(before: Any, now: Any, tolerance: float) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, now))
    if not numbers:
        return bool(before != now)
    if before == now:
        return False
    base = abs(float(before))
    return not math.isfinite(float(now)) or abs(float(now) - float(before)) > tolerance * base


def drift(spec: PreviewSpec, stored: Mapping[str, Any], fresh: Mapping[str, Any]) -> str | None:
    """How the world changed between the stored preview and a fresh one, or None."""
    if "result" not in stored or "result" not in fresh:
        return None  # a failed preview is not checked (see the module docstring)
    changes = []
    for path in spec.watch:
        before, now = _field(stored["result"], path), _field(fresh["result"], path)
        if _moved(before, now, spec.tolerance):
            changes.append(f"{path} was {before}, is {now}")
    if not changes:
        return None
    allowed = f" (tolerance {spec.tolerance:.0%})" if spec.tolerance else ""
    return "; ".join(changes) + allowed


def preview_rows(result: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """A stored preview's result as ``(field, now, after)`` rows, for every channel that
    shows it: the bundled previews say ``before`` and ``after``; any other read tool's
    result (an OpenAPI or MCP lookup) is shown field by field, as it is now."""
    before, after = result.get("before"), result.get("after")
    if isinstance(before, Mapping) or isinstance(after, Mapping):
        before = before if isinstance(before, Mapping) else {}
        after = after if isinstance(after, Mapping) else {}
        return [(k, before.get(k, ""), after.get(k, "")) for k in dict.fromkeys([*before, *after])]
    return [(k, v, "") for k, v in result.items() if k != "summary" and not k.startswith("_")]


def preview_summary(result: Mapping[str, Any]) -> str:
    """One line saying what a step would change: the preview's own summary, else its
    fields (``balance: 120; status: active``)."""
    summary = result.get("summary")
    if summary:
        return str(summary)
    return "; ".join(f"{k}: {now}" + (f" → {after}" if after != "" else "")
                     for k, now, after in preview_rows(result))
