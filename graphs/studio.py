"""The decision graph for LangGraph Studio and ``langgraph dev`` (see ``langgraph.json``).

``graph`` is an async factory the LangGraph server calls; on first use it builds an
embedded runtime (``Settings()``: the same data folder as the CLI) in a worker thread,
never on the server's event loop (opening databases blocks; ``langgraph dev`` refuses
blocking calls on its loop), and returns a graph whose one node, ``decision``, runs the
decision graph as a subgraph with the runtime's context (store, tools, policies,
planner, executor), so Studio shows its interrupts: each approval request (Agent
Inbox's ``HumanInterrupt``) waiting for a human. A resume is an answer through the
approval service as the server's authenticated user (``graphs.client_answers``;
``graphs.studio_auth`` signs our tokens in). Input: ``{"prediction": {...}}``; the
prediction is stored and its decision row created as ``engine.start``
would. The LangGraph server supplies the checkpointer. Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from decisionops.agent.errors import ConflictError
from decisionops.agent.models import SCHEMA_VERSION, Prediction, decision_id_for
from decisionops.graphs.builder import build_decision_graph
from decisionops.graphs.client_answers import client_answers
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.embedded import embedded
from decisionops.graphs.state import DecisionState

__all__ = ["build_studio_graph", "graph"]


def build_studio_graph(runtime: Any, checkpointer: BaseCheckpointSaver | None = None,
                       store: BaseStore | None = None) -> CompiledStateGraph:
    """The decision graph wrapped for Studio, over ``runtime`` (an ``agent.runtime.Runtime``).

    ``store``: where the approval node remembers the resumes it refused (a LangGraph
    server replaces it with its own); an in-memory one when None."""
    inner = build_decision_graph(None)  # a subgraph: it uses the parent's checkpointer
    context = DecisionContext(store=runtime.store, tools=runtime.tools,
                              policies=runtime.policies, planner=runtime.planner,
                              executor=runtime.executor, approvals=runtime.approvals,
                              playbooks=runtime.playbooks, actor="studio", fence=None,
                              max_replans=runtime.settings.max_replans,
                              resume=client_answers(runtime.approvals, runtime.store))

    def decision(state: DecisionState) -> dict[str, Any]:
        prediction = Prediction.model_validate(state["prediction"])
        decision_id = state.get("decision_id") or decision_id_for(prediction.id)
        runtime.ingest([prediction], source="studio", actor="studio")
        playbook = runtime.playbooks.for_prediction(prediction)
        name = playbook.name if playbook else None
        # One writer per decision: this thread drives only a decision it created itself
        # (a resume re-runs this node), never one the loop or another thread started.
        thread = (get_config().get("configurable") or {}).get("thread_id")
        owner = f"studio:{thread}" if thread else "studio"
        created = runtime.store.decisions.create(
            decision_id, prediction, playbook=name, expected_value=prediction.expected_value,
            owner=owner, lease_seconds=runtime.settings.lease_seconds)
        if created is None:
            existing = runtime.store.decisions.get(decision_id)
            if existing.lease_owner != owner:
                raise ConflictError(
                    f"decision {decision_id} for prediction {prediction.id} exists already "
                    f"(run by {existing.lease_owner or 'the loop'}, {existing.status.value}): "
                    "answer its requests in the inbox or through /langgraph, not a new run")
        payload = {"schema_version": SCHEMA_VERSION, "decision_id": decision_id,
                   "prediction": prediction.model_dump(mode="json"), "playbook": name,
                   "plan": None, "feedback": [], "answers": {}, "outcome": None, "error": None}
        return dict(inner.invoke(payload, context=context))

    builder = StateGraph(DecisionState)
    builder.add_node("decision", decision)
    builder.add_edge(START, "decision")
    builder.add_edge("decision", END)
    return builder.compile(checkpointer=checkpointer, store=store or InMemoryStore(),
                           name="decisionops-decision-studio")


async def graph(config: Any = None) -> CompiledStateGraph:
    """Factory for ``langgraph.json``: the decision graph over the embedded runtime."""
    return build_studio_graph(await asyncio.to_thread(embedded))
