"""LangGraph state machines of DecisionOps.

``build_decision_graph`` wires the decision graph; ``DecisionEngine`` runs it with the
guards LangGraph itself does not give (unknown interrupt ids, finished threads, new
input on a waiting thread). Nodes live one per file in ``graphs.nodes``.
"""

from graphs.builder import build_decision_graph
from graphs.context import DecisionContext
from graphs.engine import DecisionEngine, StepResult

__all__ = ["DecisionContext", "DecisionEngine", "StepResult", "build_decision_graph"]
