"""hold: wait, with no side effect, while an operator hold covers steps still to run.

The executor stopped before them and recorded the decision as ``held``; a worker
resumes this interrupt once no hold covers the decision any more, and execute carries
on where it stopped (completed steps are not repeated: their keys are recorded).
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["hold"]


def hold(state: DecisionState, runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    held = state.get("held") or {}
    interrupt({"hold": held.get("reason") or "an operator hold",
               "functions": held.get("functions") or [], "decision_id": state["decision_id"]})
    return {"held": None}
