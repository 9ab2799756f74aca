"""wait: with no side effect, wait until the older open decisions this one's playbook
``waits_for`` are finished. The conflicts node recorded the decision as ``waiting`` (with
the ids); a worker resumes this interrupt once none of them is open any more, and the
conflicts node looks again (another may have started meanwhile) before routing."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["wait"]


def wait(state: DecisionState, runtime: Runtime[DecisionContext]
         ) -> Command[Literal["conflicts"]]:
    waiting = state.get("waiting") or {}
    interrupt({"waits_for": list(waiting.get("decisions") or []),
               "reason": waiting.get("reason") or "older open decisions on the entity",
               "decision_id": state["decision_id"]})
    return Command(goto="conflicts", update={"waiting": None})
