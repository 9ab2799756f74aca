"""join: once every function has answered, decide what happens next.

A revise request re-drafts the plan (bounded by ``max_replans``; past the bound it
counts as a rejection); if no function approved anything the decision is rejected;
otherwise the approved steps go to the executor.
"""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent.models import ApprovalStatus
from graphs.context import DecisionContext
from graphs.state import DecisionState

__all__ = ["APPROVED", "join"]

APPROVED = {ApprovalStatus.APPROVED.value, ApprovalStatus.EDITED.value,
            ApprovalStatus.AUTO_APPROVED.value}


def join(state: DecisionState, runtime: Runtime[DecisionContext]
         ) -> Command[Literal["plan", "execute", "record"]]:
    plan = runtime.context.plan(state["plan"])
    answers = state.get("answers") or {}
    revisions = [a["feedback"] for f, a in sorted(answers.items())
                 if a.get("status") == ApprovalStatus.REVISE.value]
    if revisions and plan.version <= runtime.context.max_replans:
        return Command(goto="plan", update={
            "feedback": [*(state.get("feedback") or []), *revisions], "answers": {}})
    if not any(a.get("status") in APPROVED for a in answers.values()):
        return Command(goto="record", update={"outcome": "rejected"})
    return Command(goto="execute")
