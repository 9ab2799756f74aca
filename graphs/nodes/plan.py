"""plan: draft the next plan version with the configured planner (which drafts from a
plan a person wrote by hand where there is one: ``agent.hand_plans``).

A version already stored (a re-run after a crash) is reused, never drafted again, so a
resumed decision never calls a planner twice for the same version.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from decisionops.agent.errors import ConfigError
from decisionops.agent.lanes import drafting
from decisionops.agent.models import Prediction
from decisionops.agent.planner import PlanRequest
from decisionops.graphs.context import DecisionContext
from decisionops.graphs.state import DecisionState

__all__ = ["plan"]


def plan(state: DecisionState, runtime: Runtime[DecisionContext]) -> dict[str, Any]:
    ctx = runtime.context
    current = state.get("plan")
    version = (current["version"] + 1) if current else 1
    decision_id = state["decision_id"]
    if not ctx.fresh:
        stored = ctx.store.plans.find(decision_id, version)
        if stored is not None:
            return {"plan": ctx.state_plan(stored), "error": None, "planning": None}
    request = PlanRequest(decision_id=decision_id,
                          prediction=Prediction.model_validate(state["prediction"]),
                          playbook=state.get("playbook"), version=version,
                          feedback=tuple(state.get("feedback") or ()),
                          first=ctx.fresh and version == 1)
    try:
        with drafting():  # the leg is planning (its worker's lane) until the draft is in
            draft = ctx.planner.draft(request)
    except ConfigError as exc:
        return {"plan": None, "error": f"planner {ctx.planner.name}: {exc.message}"}
    if draft.plan is None:
        why = draft.record.fallback or "; ".join(draft.record.notes) or "see plan explain"
        return {"plan": None, "error": f"planner {draft.record.planner}: no valid plan ({why})",
                "planning": draft.record.model_dump()}
    if not ctx.planner.deterministic:
        # Persist before the guard runs, so a re-run after a crash reuses this draft
        # instead of asking the planner (an LLM) again.
        with ctx.store.decision_tx(decision_id, fence=ctx.fence, actor=ctx.actor) as tx:
            # A fresh decision's first leg has nothing stored to look for.
            ctx.store.plans.save(tx, draft.plan, verdict="drafted",
                                 record=draft.record.model_dump(), new=ctx.fresh)
    return {"plan": ctx.state_plan(draft.plan), "error": None,
            "planning": draft.record.model_dump()}
