"""Conflicts: several open decisions on one entity (a churn retention offer and a
late-payment dunning for the same account).

They are always linked: each approval request lists the other open decisions on its
entity (``ApprovalRequest.related``: id, kind, status, steps), so approvers see them side
by side. A playbook can also order them:

- ``supersedes: [kinds]``: its open decisions take precedence. A *newer* decision of one
  of those kinds on the same entity is dropped before anyone is asked: it ends
  ``needs_human`` with a reason naming the decision that supersedes it, and the ledger
  records ``decision.superseded``. An *older* one is not closed: each decision has one
  writer (its own worker), so it stays, shown beside the new one's requests.
- ``waits_for: [kinds]``: a decision of this playbook is not routed while an *older* open
  decision of one of those kinds is on its entity: it is ``waiting`` (visible, with the
  ids it waits for) and the loop resumes it once they are all finished.

Only older decisions count (creation time, then id), so two decisions never wait for
each other or drop each other. What is not here: where the graph applies it
(``graphs.nodes.conflicts``) and how the loop resumes a wait (``graphs.engine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from decisionops.agent.models import RelatedDecision
from decisionops.agent.playbooks import PlaybookBook

__all__ = ["ConflictVerdict", "judge"]


@dataclass(frozen=True)
class ConflictVerdict:
    related: list[RelatedDecision] = field(default_factory=list)
    superseded_by: RelatedDecision | None = None
    waits_for: list[RelatedDecision] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if self.superseded_by is not None:
            other = self.superseded_by
            return (f"superseded by open decision {other.decision_id} ({other.kind}, "
                    f"{other.status}, playbook {other.playbook}) on the same entity")
        return "waits for " + ", ".join(f"{o.decision_id} ({o.kind}, {o.status})"
                                        for o in self.waits_for)


def judge(*, kind: str, playbook: str | None, created: tuple[Any, str],
          others: Sequence[tuple[RelatedDecision, Any]], book: PlaybookBook | None
          ) -> ConflictVerdict:
    """What to do with a decision of ``kind``/``playbook`` created at ``created`` (time,
    id), given the other open decisions on its entity (each with its creation time)."""
    related = [r for r, _ in others]
    if book is None:
        return ConflictVerdict(related=related)
    older = [r for r, at in others if (at, r.decision_id) < created]
    for other in older:
        theirs = book.playbooks.get(other.playbook or "") or book.first_for_kind(other.kind)
        if theirs is not None and kind in theirs.supersedes:
            return ConflictVerdict(related=related, superseded_by=other)
    mine = book.playbooks.get(playbook or "") or book.first_for_kind(kind)
    waits = [o for o in older if mine is not None and o.kind in mine.waits_for]
    return ConflictVerdict(related=related, waits_for=waits)
