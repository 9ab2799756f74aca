"""Check before asking: confirm that what a plan acts on exists before anyone approves it.

Each tool declares how its targets are looked up (``ToolSpec.lookups``: a read-only tool
and the call arguments it takes). ``check_targets`` runs every distinct lookup of a plan
once. A lookup that fails for good (``unknown account 'ACC-404'``) is a problem naming
the entity: the decision goes to a person, no approver is asked. A lookup that cannot be
answered right now (a retryable failure) does not hold the plan back: approvers are asked
as before and the step's own call still fails on an unknown target; it is reported as
unchecked. What is not here: where the graph runs it (``graphs.nodes.check``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decisionops.agent.errors import InvalidInputError, NotFoundError, ToolCallError
from decisionops.agent.models import Plan
from decisionops.agent.ports import ToolPort

__all__ = ["TargetCheck", "check_targets"]


@dataclass(frozen=True)
class TargetCheck:
    unknown: list[str] = field(default_factory=list)
    """One line per target that does not exist (or cannot be read, for good): the
    lookup's own message naming the entity, the lookup tool and the steps."""
    unchecked: list[str] = field(default_factory=list)
    """Lookups that could not be answered now (retryable failures)."""

    @property
    def reason(self) -> str:
        """Why the decision needs a person (its ``decisions.error``)."""
        return "; ".join(self.unknown)


def check_targets(plan: Plan, tools: ToolPort) -> TargetCheck:
    """Run each distinct lookup the plan's steps declare, once."""
    wanted: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for step in plan.steps:
        for lookup in tools.spec(step.tool).lookups:
            arguments = lookup.arguments_for(step.arguments)
            if arguments is None:
                continue
            key = (lookup.tool, tuple(sorted((k, str(v)) for k, v in arguments.items())))
            wanted.setdefault(key, []).append(step.id)
    result = TargetCheck()
    for (tool, arguments), steps in wanted.items():
        where = f"looked up with {tool} for step{'s' * (len(steps) > 1)} {', '.join(steps)}"
        try:
            tools.call(tool, dict(arguments), idempotency_key=f"lookup:{plan.decision_id}")
        except ToolCallError as exc:
            (result.unchecked if exc.retryable else result.unknown).append(
                f"{exc.message} ({where})")
        except (InvalidInputError, NotFoundError) as exc:
            result.unknown.append(f"{exc.message} ({where})")
    return result
