"""``Dialog``: one planning conversation with the model, in one output mode.

``propose()`` runs the conversation until the model submits a plan that parses, and
returns it; ``repair(problems)`` sends the guard's problems back and proposes again.
Everything is bounded: lookup rounds (after ``max_lookup_rounds`` the model is forced
to submit), unusable replies (``max_bad_replies``: bad JSON, unknown tool, missing
fields, no plan, truncated output), and, through the client, transport retries. Each
unusable reply is answered so the model can correct itself, and nothing of it is used:
a lookup with invalid arguments is not run, a truncated reply is dropped whole.
"""

from __future__ import annotations

import json
from typing import Any

from decisionops.agent.errors import InvalidInputError, PermissionDenied
from decisionops.agent.llm._bounds import lookup_problem
from decisionops.agent.llm._client import ChatClient, Reply
from decisionops.agent.llm._errors import LLMOutputError
from decisionops.agent.llm._meter import Meter
from decisionops.agent.llm._output import SUBMIT_TOOL, PlanOut, parse_plan, plan_schema, tool_name
from decisionops.agent.llm._ports import Lookup
from decisionops.agent.llm._prompting import PromptSet, quote
from decisionops.agent.models import Prediction
from decisionops.agent.ports import ToolSpec

__all__ = ["Dialog", "openai_name"]


def openai_name(tool: str) -> str:
    """``crm.get_account`` → ``crm__get_account`` (dots are not allowed in function names)."""
    return tool.replace(".", "__")


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not a number JSON allows")


class Dialog:
    """One conversation; ``mode`` is ``tools`` or ``json``."""

    def __init__(self, *, client: ChatClient, meter: Meter, prompts: PromptSet, mode: str,
                 system: str, user: str, lookup: Lookup, tag: str, max_lookup_rounds: int,
                 max_bad_replies: int, max_tokens: int, raw: list[str],
                 prediction: Prediction) -> None:
        self.client = client
        self.meter = meter
        self.prompts = prompts
        self.mode = mode
        self.lookup = lookup
        self.prediction = prediction
        self.tag = tag
        self.max_lookup_rounds = max_lookup_rounds
        self.max_bad_replies = max_bad_replies
        self.max_tokens = max_tokens
        self.raw = raw
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system},
                                               {"role": "user", "content": user}]
        self.rounds = 0
        self.bad = 0
        self.lookup_results: list[dict[str, Any]] = []
        """Results of the model's lookups (their whole values may be used, bound B4)."""
        self._purpose = "plan"
        self._open_submit: str | None = None
        self._lookups = {openai_name(s.name): s for s in lookup.specs()}

    # ------------------------------------------------------------------ public

    def propose(self) -> PlanOut:
        while True:
            reply = self._call()
            if reply.finish_reason == "length":
                self._bad("the reply was cut off at the token limit (finish_reason=length); "
                          "none of it was used")
                continue
            plan = self._take_json(reply) if self.mode == "json" else self._take_tools(reply)
            if plan is not None:
                return plan

    def repair(self, problems: list[str], attempts_left: int) -> PlanOut:
        text = self.prompts.repair.render(problems=problems, attempts_left=attempts_left)
        if self._open_submit is not None:
            self.messages.append({"role": "tool", "tool_call_id": self._open_submit,
                                  "content": text})
            self._open_submit = None
        else:
            self.messages.append({"role": "user", "content": text})
        self._purpose = "repair"
        return self.propose()

    # ------------------------------------------------------------------ one call

    def _call(self) -> Reply:
        self.meter.purpose = self._purpose
        if self.mode == "json":
            reply = self.client.complete(
                self.messages, meter=self.meter, max_tokens=self.max_tokens, mode="json",
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "plan", "schema": plan_schema(),
                                                 "strict": False}})
        else:
            force = self.rounds >= self.max_lookup_rounds
            reply = self.client.complete(
                self.messages, meter=self.meter, max_tokens=self.max_tokens, mode="tools",
                tools=self._tools(include_lookups=not force),
                tool_choice=({"type": "function", "function": {"name": SUBMIT_TOOL}}
                             if force else "auto"))
        self.raw.append(reply.raw)
        return reply

    def _tools(self, *, include_lookups: bool) -> list[dict[str, Any]]:
        schema = plan_schema()
        tools = [{"type": "function", "function": {
            "name": SUBMIT_TOOL, "description": schema.get("description", ""),
            "parameters": schema}}]
        if include_lookups:
            tools += [{"type": "function", "function": {
                "name": name, "description": spec.description, "parameters": spec.parameters}}
                for name, spec in sorted(self._lookups.items())]
        return tools

    def _bad(self, problem: str) -> None:
        self.bad += 1
        self._purpose = "retry"
        if self.bad > self.max_bad_replies:
            raise LLMOutputError(f"{self.bad} unusable replies from the model; last: {problem}")

    def _malformed(self, problem: str) -> str:
        return self.prompts.malformed.render(problem=problem, mode=self.mode)

    # ------------------------------------------------------------------ json mode

    def _take_json(self, reply: Reply) -> PlanOut | None:
        self.messages.append({"role": "assistant", "content": reply.content or ""})
        try:
            return parse_plan(reply.content)
        except LLMOutputError as exc:
            self.messages.append({"role": "user", "content": self._malformed(exc.message)})
            self._bad(exc.message)
            return None

    # ------------------------------------------------------------------ tools mode

    def _take_tools(self, reply: Reply) -> PlanOut | None:
        if not reply.tool_calls:
            self.messages.append({"role": "assistant", "content": reply.content or ""})
            problem = "it called no tool; the plan must be submitted with submit_plan"
            self.messages.append({"role": "user", "content": self._malformed(problem)})
            self._bad(problem)
            return None
        self.messages.append({"role": "assistant", "content": reply.content,
                              "tool_calls": [{"id": c.id, "type": "function",
                                              "function": {"name": c.name,
                                                           "arguments": c.arguments}}
                                             for c in reply.tool_calls]})
        submitted: tuple[str, PlanOut] | None = None
        problems: list[str] = []
        looked_up = False
        submits = [c for c in reply.tool_calls if c.name == SUBMIT_TOOL]
        for call in reply.tool_calls:
            if call.name == SUBMIT_TOOL and len(submits) > 1:
                # Which plan was meant? Neither is taken (trial 30: the first was, and
                # the rest dropped without a word).
                problem = (f"{SUBMIT_TOOL} was called {len(submits)} times in one reply; "
                           "submit exactly one plan")
                if call is submits[0]:
                    problems.append(problem)
                self._answer(call.id, error=self._malformed(problem))
            elif call.name == SUBMIT_TOOL:
                try:
                    submitted = (call.id, parse_plan(call.arguments))
                except LLMOutputError as exc:
                    problems.append(exc.message)
                    self._answer(call.id, error=self._malformed(exc.message))
            elif call.name in self._lookups and self.rounds >= self.max_lookup_rounds:
                problem = (f"{call.name!r}: the {self.max_lookup_rounds} lookup round(s) are used "
                           f"up; call {SUBMIT_TOOL} with the plan now")
                problems.append(problem)
                self._answer(call.id, error=problem)
            elif call.name in self._lookups:
                looked_up = True
                error = self._lookup(call.id, self._lookups[call.name], call.arguments)
                if error:
                    problems.append(error)
            else:
                problem = (f"{call.name!r} is not a tool you can call (lookups: "
                           f"{', '.join(sorted(self._lookups)) or 'none'}; then {SUBMIT_TOOL})")
                problems.append(problem)
                self._answer(call.id, error=problem)
        if submitted is not None:
            self._open_submit = submitted[0]
            return submitted[1]
        if looked_up:
            self.rounds += 1
            self._purpose = "lookup"
        if problems:
            self._bad("; ".join(problems))
        return None

    def _lookup(self, call_id: str, spec: ToolSpec, raw_arguments: str) -> str | None:
        """Run one lookup call; return the problem when it could not run."""
        tool = spec.name
        try:
            arguments = json.loads(raw_arguments or "", parse_constant=_reject_constant)
        except ValueError as exc:
            problem = f"{tool_name(tool)} arguments are not valid JSON ({exc}); it was not run"
            self._answer(call_id, error=problem)
            return problem
        refused = (lookup_problem(spec, arguments, self.prediction)
                   if isinstance(arguments, dict) else None)
        if refused is not None:
            problem = f"{tool}: {refused}; it was not run"
            self._answer(call_id, error=problem)
            return problem
        try:
            result = self.lookup(tool, arguments)
        except (InvalidInputError, PermissionDenied) as exc:
            problem = f"{tool}: {exc.message}; it was not run"
            self._answer(call_id, error=problem)
            return problem
        self.lookup_results.append(result)
        self._answer(call_id, source=tool, payload=result)
        return None

    def _answer(self, call_id: str, *, error: str = "", source: str = "",
                payload: Any = None) -> None:
        content = self.prompts.tool_result.render(
            tag=self.tag, source=source, payload=quote(payload) if payload is not None else "",
            error=error)
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
