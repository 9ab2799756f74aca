"""The ops chat with an LLM: an agent loop over an OpenAI-compatible chat-completions
endpoint with tool calling, bounded in round trips, with the same tools (and the same
permissions) as the commands.

Tool results go back to the model as data (JSON, cut to a size bound); a malformed or
refused tool call returns an error to the model instead of failing the turn. Nothing
here can approve: there is no such tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from openai import OpenAI, OpenAIError

from decisionops.agent.chat._tools import ChatTools
from decisionops.agent.errors import DecisionOpsError

__all__ = ["LlmChat", "LlmTurn"]

_MAX_TOOL_RESULT = 8000
_MAX_HISTORY = 20


@dataclass
class LlmTurn:
    reply: str
    tool_calls: list[str] = field(default_factory=list)
    """``name`` of each tool called, in order."""
    failed: bool = False
    refused: list[dict[str, str]] = field(default_factory=list)
    """Each tool call refused (``tool``, ``error``): nothing it asked for happened."""


class LlmChat:
    def __init__(self, client: OpenAI, *, model: str, system_prompt: str,
                 max_turns: int) -> None:
        self._client = client
        self._model = model
        self._system = system_prompt
        self._max_turns = max_turns

    def reply(self, tools: ChatTools, history: list[dict[str, Any]], message: str) -> LlmTurn:
        user = tools.user
        functions = f", functions: {', '.join(user.functions)}" if user.functions else ""
        system = self._system.format(user=user.name, role=user.role, functions=functions)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        messages += [{"role": m["role"], "content": m["content"]} for m in history[-_MAX_HISTORY:]
                     if m["role"] in ("user", "assistant")]
        messages.append({"role": "user", "content": message})
        turn = LlmTurn(reply="")
        specs = tools.openai_tools()
        for _ in range(self._max_turns):
            try:
                response = self._client.chat.completions.create(
                    model=self._model, messages=messages, tools=specs, max_tokens=800)
            except OpenAIError as exc:
                turn.reply = (f"The LLM is unavailable ({type(exc).__name__}); the commands "
                              "still work: type 'help'.")
                turn.failed = True
                return turn
            if not response.choices:
                break
            choice = response.choices[0].message
            calls = choice.tool_calls or []
            if not calls:
                turn.reply = _with_refusals((choice.content or "").strip() or "(no answer)",
                                            turn.refused)
                return turn
            messages.append({"role": "assistant", "content": choice.content or "",
                             "tool_calls": [{"id": c.id, "type": "function",
                                             "function": {"name": c.function.name,
                                                          "arguments": c.function.arguments}}
                                            for c in calls]})
            for call in calls:
                turn.tool_calls.append(call.function.name)
                content, error = self._run(tools, call.function.name, call.function.arguments)
                if error is not None:
                    turn.refused.append({"tool": call.function.name, "error": error})
                messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
        turn.reply = _with_refusals(f"I stopped after {self._max_turns} rounds of tool calls "
                                    "without an answer; ask something narrower.", turn.refused)
        return turn

    @staticmethod
    def _run(tools: ChatTools, name: str, raw_arguments: str | None) -> tuple[str, str | None]:
        """The tool's result for the model, and the refusal when it was refused."""
        try:
            arguments = json.loads(raw_arguments or "{}")
        except ValueError:
            error = "arguments are not valid JSON; nothing was done"
            return json.dumps({"error": error}), error
        try:
            result = tools.call(name, arguments)
        except DecisionOpsError as exc:
            return json.dumps({"error": exc.message}), exc.message
        text = json.dumps({"data": result}, default=str, ensure_ascii=False)
        if len(text) > _MAX_TOOL_RESULT:
            text = json.dumps({"data_truncated": text[:_MAX_TOOL_RESULT]})
        return text, None


def _with_refusals(reply: str, refused: list[dict[str, str]]) -> str:
    """The model's reply, followed by what was refused, said by us: a model may claim an
    action its tool call was refused (or that has no tool at all)."""
    if not refused:
        return reply
    n = len(refused)
    listed = "; ".join(f"{r['tool']} ({r['error']})" for r in refused)
    return (f"{reply}\n\nNot done: {n} action{'s' * (n > 1)} the assistant asked for "
            f"{'were' if n > 1 else 'was'} refused: {listed}.")
