"""Wiring of the decision graph. No graph is compiled at import time.

::

    START → plan → guard ─┬─(refused)─────────────────────────────────────→ record → END
                          └→ check ─┬─(unknown target)───────────────────────→ record
                                    └→ conflicts ─┬─(superseded)─────────────→ record
                                                  ├→ wait ⇄ conflicts (waits_for)
                                    ┌─────────────┘
                                    └→ route ─┬─ Send → approval[f] → join ─┬→ execute → record
                                              │                             ├→ plan (revise)
                                              │                             └→ record
                                              └─(policy approved every function)─→ execute
                                                       execute ⇄ hold (an operator hold)
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from decisionops.agent.telemetry import traced_node
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.nodes.approval import approval
from decisionops.graphs.nodes.check import check
from decisionops.graphs.nodes.conflicts import conflicts
from decisionops.graphs.nodes.execute import execute
from decisionops.graphs.nodes.guard import guard
from decisionops.graphs.nodes.hold import hold
from decisionops.graphs.nodes.join import join
from decisionops.graphs.nodes.plan import plan
from decisionops.graphs.nodes.record import record
from decisionops.graphs.nodes.route import route
from decisionops.graphs.nodes.wait import wait
from decisionops.graphs.state import DecisionState

__all__ = ["build_decision_graph"]


def build_decision_graph(checkpointer: BaseCheckpointSaver | None) -> CompiledStateGraph:
    builder = StateGraph(DecisionState, context_schema=DecisionContext)
    builder.add_node("plan", traced_node("plan", plan))
    builder.add_node("guard", traced_node("guard", guard))
    builder.add_node("check", traced_node("check", check))
    builder.add_node("conflicts", traced_node("conflicts", conflicts))
    builder.add_node("wait", traced_node("wait", wait))
    builder.add_node("route", traced_node("route", route))
    builder.add_node("approval", traced_node("approval", approval))
    builder.add_node("join", traced_node("join", join))
    builder.add_node("execute", traced_node("execute", execute))
    builder.add_node("hold", traced_node("hold", hold))
    builder.add_node("record", traced_node("record", record))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "guard")
    builder.add_edge("approval", "join")
    builder.add_edge("hold", "execute")
    builder.add_edge("record", END)
    return builder.compile(checkpointer=checkpointer, name="decisionops-decision")
