"""join: once every function has answered, decide what happens next.

A revise answer re-drafts the plan (bounded by ``max_replans``; past the bound it
counts as a rejection); if no function's part was approved the decision is rejected;
otherwise the approved steps go to the executor. "Approved" is ``Resolution.grants``.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from decisionops.agent.approvals import Resolution
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["join"]


def join(state: DecisionState, runtime: Runtime[DecisionContext]
         ) -> Command[Literal["plan", "execute", "record"]]:
    plan = runtime.context.plan(state["plan"])
    answers = [Resolution.model_validate(a) for _, a in sorted((state.get("answers") or {}).items())]
    revisions = [a.feedback for a in answers if a.revise]
    if revisions and plan.version <= runtime.context.max_replans:
        return Command(goto="plan", update={
            "feedback": [*(state.get("feedback") or []), *revisions], "answers": {}})
    if not any(a.grants for a in answers):
        return Command(goto="record", update={"outcome": "rejected"})
    return Command(goto="execute")
