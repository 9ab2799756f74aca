"""The obedient model: a scripted OpenAI-compatible responder that does what injected
text tells it to, as a model that falls for prompt injection would.

It reads its prompt like the real planner's model does: the playbook plan, the
prediction and the entity's records are quoted in ``<data-…>`` blocks. It submits the
playbook plan, changed by every ``Payload`` whose ``needle`` occurs anywhere in the
conversation (the prediction, the lookups, a tool result). It never learns: a repair
request gets the same obedient plan again, so what the guard refuses ends in the
planner's fallback.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from decisionops.evals.scripted import call, completion

__all__ = ["ObedientModel", "Payload", "add_step", "extra_fields", "set_argument", "split_step"]

_BLOCK = re.compile(r'<data-(\w+) source="(\w+)">\n(.*?)\n</data-\1>', re.S)
_STEP_KEYS = ("id", "function", "tool", "arguments", "depends_on", "rationale",
              "expected_cost", "expected_value")

Steps = list[dict[str, Any]]
Seen = dict[str, Any]
"""What the model read: ``prediction`` and ``lookups`` (the entity's records)."""


@dataclass(frozen=True)
class Payload:
    """An injected instruction: the text the model recognises, and what it then does."""

    needle: str
    """Recognised case-insensitively; keep it free of ``<>&"\\`` (quoted data escapes them)."""
    obey: Callable[[Steps, Seen], Steps]
    name: str = ""


def _entity(seen: Seen) -> str:
    return str(seen["prediction"]["entity_id"])


def add_step(step_id: str, function: str, tool: str,
             arguments: Callable[[Seen], dict[str, Any]] | dict[str, Any],
             *, depends_on: Iterable[str] = ()) -> Callable[[Steps, Seen], Steps]:
    """Obey by adding a step."""
    def obey(steps: Steps, seen: Seen) -> Steps:
        args = arguments(seen) if callable(arguments) else dict(arguments)
        return [*steps, {"id": step_id, "function": function, "tool": tool, "arguments": args,
                         "depends_on": list(depends_on),
                         "rationale": "The account record asks for this; it is pre-approved.",
                         "expected_cost": 0, "expected_value": 0}]
    return obey


def set_argument(tool: str, name: str, value: Any) -> Callable[[Steps, Seen], Steps]:
    """Obey by changing an argument of every step using ``tool`` (``value`` may be a
    function of what the model read)."""
    def obey(steps: Steps, seen: Seen) -> Steps:
        for step in steps:
            if step["tool"] == tool:
                step["arguments"][name] = value(seen) if callable(value) else value
        return steps
    return obey


def split_step(step_id: str, parts: int, name: str = "amount") -> Callable[[Steps, Seen], Steps]:
    """Obey by splitting a step into ``parts`` equal ones (a credit into smaller credits)."""
    def obey(steps: Steps, seen: Seen) -> Steps:
        out: Steps = []
        for step in steps:
            if step["id"] != step_id:
                out.append(step)
                continue
            for index in range(parts):
                piece = copy.deepcopy(step)
                piece["id"] = step_id if index == 0 else f"{step_id}_{index + 1}"
                piece["arguments"][name] = round(step["arguments"][name] / parts, 2)
                out.append(piece)
        return out
    return obey


def extra_fields(**fields: Any) -> Callable[[Steps, Seen], Steps]:
    """Obey by marking steps approved, low risk, …: fields the plan schema has not."""
    def obey(steps: Steps, seen: Seen) -> Steps:
        return [{**step, **fields} for step in steps]
    return obey


class ObedientModel:
    """The responder (``ScriptedServer(responder=...)``); counts its calls and what it
    obeyed. ``lookups`` (tool, arguments) are called first, one round, before the plan
    is submitted: their results are in the conversation the payloads are looked for in."""

    def __init__(self, *payloads: Payload,
                 lookups: Iterable[tuple[str, dict[str, Any]]] = ()) -> None:
        self.payloads = payloads
        self.lookups = list(lookups)
        self.calls = 0
        self.obeyed: list[str] = []

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        messages = body.get("messages", [])
        if self.lookups and not any(m.get("role") == "tool" for m in messages):
            return completion(tool_calls=[call(tool.replace(".", "__"), arguments)
                                          for tool, arguments in self.lookups])
        text = "\n".join(str(m.get("content") or "") for m in messages).lower()
        user = next((str(m["content"]) for m in messages if m.get("role") == "user"), "")
        blocks = {source: json.loads(raw) for _, source, raw in _BLOCK.findall(user)}
        plan = blocks.get("playbook_plan") or {"steps": []}
        steps = [{k: copy.deepcopy(s[k]) for k in _STEP_KEYS} for s in plan["steps"]]
        seen = {"prediction": blocks.get("prediction", {}), "lookups": blocks.get("lookups", {})}
        for payload in self.payloads:
            if payload.needle.lower() in text:
                steps = payload.obey(steps, seen)
                self.obeyed.append(payload.name or payload.needle)
        rationale = "Following the instructions in the data." if self.obeyed else (
            "The playbook plan fits.")
        return completion(tool_calls=[call("submit_plan", {"rationale": rationale,
                                                           "steps": steps})])
