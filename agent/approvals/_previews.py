"""Has the world changed since a plan version was routed? The approval service's part of
``agent.preview``: each approved function's steps' previews, stored with its request at
routing, read again just before the first step of that plan version runs."""

from __future__ import annotations

from collections.abc import Iterable

from decisionops.agent.models import Plan
from decisionops.agent.ports import ToolPort
from decisionops.agent.preview import drift, preview_spec, read_preview
from decisionops.agent.store import Store

__all__ = ["changed_since_routed"]


def changed_since_routed(store: Store, tools: ToolPort, plan: Plan, functions: Iterable[str]
                         ) -> dict[str, str]:
    """function → how the world changed for its part (its steps' watched preview fields,
    beyond their tolerance), for those of ``functions`` where it did."""
    wanted = set(functions)
    out: dict[str, str] = {}
    for row in store.approvals.list(decision_id=plan.decision_id, plan_version=plan.version):
        if row.function not in wanted or not row.request.previews:
            continue
        changes = []
        for step in row.request.steps:
            stored = row.request.previews.get(step.id)
            spec = preview_spec(tools, step.tool)
            if stored is None or spec is None or not spec.watch:
                continue
            why = drift(spec, stored, read_preview(tools, step) or {})
            if why:
                changes.append(f"{step.id}: {why}")
        if changes:
            out[row.function] = "; ".join(changes)
    return out
