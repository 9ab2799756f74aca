"""What every node gets through LangGraph's runtime context: the ports, the policies and
the approval service.

Context is not checkpointed; the engine passes it on every invoke, so a resumed thread
always runs against the current process's store and tools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent.approvals import ApprovalService, Resolution
from decisionops.agent.executor import Executor
from decisionops.agent.models import ApprovalRequest, Plan
from decisionops.agent.planner import Planner
from decisionops.agent.playbooks import PlaybookBook
from decisionops.agent.policy import Policies
from decisionops.agent.ports import ToolPort
from decisionops.agent.store import Store

__all__ = ["DecisionContext"]


@dataclass(frozen=True)
class DecisionContext:
    store: Store
    tools: ToolPort
    policies: Policies
    planner: Planner
    executor: Executor
    approvals: ApprovalService
    """Routing a plan: what policy approves, who must answer, by when."""
    playbooks: PlaybookBook | None = None
    """The loaded playbooks (what they supersede or wait for); None: no conflict rules."""
    actor: str = "decisionops"
    """Who the ledger records for automatic transitions (worker id)."""
    fence: int | None = None
    """The lease's fencing token; writes with a stale token are refused."""
    max_replans: int = 2
    fresh: bool = False
    """This leg starts a decision created for it (its row, fence 1): nothing of it is
    stored yet, so there is no stored plan version to look for."""
    settled: Callable[[], None] | None = None
    """Called once the decision's terminal state is stored under ``fence``: no worker
    acts on it again, so the leg's last checkpoint needs no fence check."""
    resume: Callable[[ApprovalRequest, Any], Resolution] | None = None
    """Turns a LangGraph client's resume value (Studio, ``langgraph dev``) into the
    function's resolution by answering through the approval service as the client's
    authenticated user (``graphs.client_answers``); refusals raise ``UsageError``. None:
    the engine resumes with resolutions the service recorded."""
    _plan: list[Any] = field(default_factory=list, init=False, repr=False, compare=False)

    def plan(self, data: dict[str, Any]) -> Plan:
        """The state's plan as a model, validated once per leg: LangGraph hands each node
        the object the last node wrote, so the nodes of a leg share one ``Plan`` (and its
        cached hash) until a node writes a new plan (``state_plan``)."""
        if self._plan and self._plan[0] is data:
            return self._plan[1]
        plan = Plan.model_validate(data)
        self._plan[:] = [data, plan]
        return plan

    def state_plan(self, plan: Plan) -> dict[str, Any]:
        """``plan`` as the state holds it (JSON), remembered for the next nodes' ``plan``."""
        data = plan.model_dump(mode="json")
        self._plan[:] = [data, plan]
        return data

    def stored_verdict(self, plan: Plan) -> tuple[str, str] | None:
        """On a replayed leg, what the store already says of this plan version: ``("accepted",
        "")``, or ``("refused", reason)`` (refused by guard, check or conflicts before a
        crash). That verdict stands: a node that finds one neither looks again nor records
        twice. None on a fresh leg, or when nothing is stored yet."""
        if self.fresh:
            return None
        stored = self.store.plans.row(plan.decision_id, plan.version)
        if stored is None or stored["verdict"] not in ("accepted", "refused"):
            return None
        if stored["verdict"] == "accepted":
            return ("accepted", "")
        return ("refused", "; ".join(stored["problems"] or ()) or "plan refused")
