"""Building the model's messages from the templates in ``prompts/``.

Untrusted values (the prediction, lookup results, the playbook's plan, approver
feedback) are serialized here as JSON with ``<`` and ``>`` escaped, so no value can
close the ``<data-…>`` block it is quoted in; the block tag carries a per-draft nonce.
The catalogue lists only action tools some function may use, with the functions and
their limits. No secret is ever passed to a template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from decisionops.agent.hashing import digest
from decisionops.agent.models import Plan, Prediction
from decisionops.agent.policy import Policies
from decisionops.agent.ports import ToolPort
from decisionops.prompts import Prompt, load_prompt, prompt_version

__all__ = ["PromptSet", "catalogue", "data_tag", "quote"]


def quote(value: Any) -> str:
    """JSON for a data block: ``<``/``>``/``&`` escaped so the block cannot be closed early."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def data_tag(decision_id: str, version: int) -> str:
    return "d" + digest(["data-tag", decision_id, version])[:10]


def catalogue(tools: ToolPort, policies: Policies) -> str:
    """Action tools that at least one function may use: schema, functions and limits."""
    entries = []
    for spec in tools.specs():
        if not spec.side_effects:
            continue
        functions = sorted(name for name, policy in policies.functions.items()
                           if spec.name in policy.tools)
        if not functions:
            continue
        limits = {name: {arg: limit.model_dump(exclude_none=True)
                         for arg, limit in policies.get(name).limits.get(spec.name, {}).items()}
                  for name in functions if policies.get(name).limits.get(spec.name)}
        entries.append({"tool": spec.name, "functions": functions,
                        "description": spec.description,
                        "parameters": _untitled(spec.parameters),
                        **({"limits": limits} if limits else {})})
    return "\n".join(quote(entry) for entry in entries)


def _untitled(schema: Any) -> Any:
    """A JSON schema without ``title`` keys (noise for the model, tokens for us)."""
    if isinstance(schema, dict):
        return {k: _untitled(v) for k, v in schema.items()
                if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [_untitled(v) for v in schema]
    return schema


@dataclass(frozen=True)
class PromptSet:
    """The templates one planner uses, loaded once."""

    system: Prompt
    user: Prompt
    repair: Prompt
    malformed: Prompt
    tool_result: Prompt
    hybrid: Prompt | None = None

    @classmethod
    def load(cls, *, hybrid: bool) -> PromptSet:
        return cls(system=load_prompt("plan_system"), user=load_prompt("plan_user"),
                   repair=load_prompt("repair"), malformed=load_prompt("malformed"),
                   tool_result=load_prompt("tool_result"),
                   hybrid=load_prompt("hybrid") if hybrid else None)

    @property
    def version(self) -> str:
        items = [self.system, self.user, self.repair, self.malformed, self.tool_result]
        return prompt_version(items + ([self.hybrid] if self.hybrid else []))

    def system_text(self, *, mode: str, catalogue_text: str, max_steps: int,
                    lookup_tools: list[str], max_extra_steps: int, max_growth: float) -> str:
        text = self.system.render(catalogue=catalogue_text, mode=mode, max_steps=max_steps,
                                  lookup_tools=lookup_tools)
        if self.hybrid is not None:
            text += "\n" + self.hybrid.render(max_extra_steps=max_extra_steps,
                                              max_growth=f"{max_growth:g}")
        return text

    def user_text(self, *, tag: str, prediction: Prediction, context: dict[str, Any],
                  baseline: Plan | None, feedback: list[str], previous: Plan | None) -> str:
        return self.user.render(
            tag=tag, prediction=quote(prediction.model_dump(mode="json")), context=quote(context),
            playbook_plan=quote(_plan_view(baseline)) if baseline else "",
            feedback=[quote(item) for item in feedback],
            previous_plan=quote(_plan_view(previous)) if previous else "")


def _plan_view(plan: Plan) -> dict[str, Any]:
    """What the model sees of a plan: steps without planner bookkeeping."""
    return {"playbook": plan.playbook, "all_or_nothing": plan.all_or_nothing,
            "steps": [{"id": s.id, "function": s.function, "tool": s.tool,
                       "arguments": s.arguments, "depends_on": list(s.depends_on),
                       "risk": s.risk.value, "rationale": s.rationale,
                       "expected_cost": s.expected_cost, "expected_value": s.expected_value}
                      for s in plan.steps]}
