"""LangGraph state machines of DecisionOps.

``build_decision_graph`` wires the decision graph; ``DecisionEngine`` runs it with the
guards LangGraph itself does not give (unknown interrupt ids, finished threads, new
input on a waiting thread). Nodes live one per file in ``graphs.nodes``.
"""

from decisionops.graphs.builder import build_decision_graph
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.engine import DecisionEngine, StepResult

__all__ = ["DecisionContext", "DecisionEngine", "StepResult", "build_decision_graph"]
