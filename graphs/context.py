"""What every node gets through LangGraph's runtime context: the ports and policies.

Context is not checkpointed; the engine passes it on every invoke, so a resumed thread
always runs against the current process's store and tools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.executor import Executor
from agent.planner import Planner
from agent.policy import Policies
from agent.ports import ToolPort
from agent.store import Store

__all__ = ["DecisionContext"]


@dataclass(frozen=True)
class DecisionContext:
    store: Store
    tools: ToolPort
    policies: Policies
    planner: Planner
    executor: Executor
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
