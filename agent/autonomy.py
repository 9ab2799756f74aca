"""Earned autonomy: the rules by which a kind of step that people keep approving as it
is, with outcomes no worse than the control group's, stops needing them, and the first
sign of doubt brings them back. Pure: what was answered and what happened are read by
the caller (``agent.approvals``, which owns when these rules apply).

A **step class** is one step of one playbook as one function's approvers see it:
function, playbook, step id, tool, and a band for each argument the function's policy
bounds (a limit or a total on it): the value rounded up to a power of two, so a credit
of 80 and one of 120 are both ``amount≤128``, one of 300 is ``amount≤512``. Other
arguments (the account, a subject line, a due date) do not make a class: the class is
what is done and how much, not to whom or when.

A function opts in with ``autonomy:`` in its policy (``Autonomy``). A class is
**promoted** when, since its last change of state, its last ``after`` human answers
were all approvals without an edit, by at least ``approvers`` distinct people, and its
outcomes are not worse than the control group's (below). It is **demoted** at the first
rejection, revise or edit of one of its steps, and when its outcomes turn out worse. An
expiry does not demote, but an unanswered request is no approval: it breaks the run.

Outcomes: the decisions a class's steps were approved in (by people or by autonomy)
that have a recorded outcome, against the control group of the playbook's kind (the
predictions triage held out). Success is an outcome label among ``SUCCESS_LABELS``.
Worse means a one-sided two-proportion z-test finds the class's success rate below the
control's at the policy's ``confidence``; with no outcomes in either arm there is no
evidence of worse, and the evidence says so.

Never promoted (``not_eligible``): a step the playbook would not propose (an LLM or
hand plan's own step: another id, tool or function than the playbook's), a step above
the function's hard limits or above ``max_risk``, a tool that binds no target (what it
acts on is not pinned by the approval).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from decisionops.agent.models import Step

__all__ = ["HUMAN", "ClassEvidence", "Outcomes", "class_key", "not_eligible", "outcomes_worse",
           "run_of_approvals", "verdict"]

HUMAN = ("approved", "edited", "rejected", "revise", "expired")
"""Answers that count for or against a class (``autonomy``: approved by this rule, not
by a person, and neither)."""


def band(value: float) -> int:
    """The power of two at or above ``value`` (0 for zero or less)."""
    if value <= 0:
        return 0
    return 1 if value <= 1 else 2 ** math.ceil(math.log2(value))


def class_key(function: str, playbook: str | None, step: Step,
              banded: Collection[str] = ()) -> str | None:
    """The class of ``step``, or None for a plan without a playbook. ``banded``: the
    arguments that make the class (the ones the function's policy bounds)."""
    if playbook is None:
        return None
    bands = sorted((name, band(float(value))) for name, value in step.arguments.items()
                   if name in banded and isinstance(value, int | float)
                   and not isinstance(value, bool))
    tail = ",".join(f"{name}≤{limit}" for name, limit in bands)
    return f"{function}/{playbook}/{step.id}/{step.tool}" + (f"[{tail}]" if tail else "")


def not_eligible(step: Step, *, function: str, playbook_steps: Mapping[str, tuple[str, str]],
                 limit_problems: Sequence[str], max_risk_rank: int, targets: Sequence[str]
                 ) -> str | None:
    """Why ``step`` may never be approved by earned autonomy, or None."""
    proposed = playbook_steps.get(step.id)
    if proposed is None or proposed != (function, step.tool):
        return "not a step the playbook proposes"
    if step.risk.rank > max_risk_rank:
        return f"risk {step.risk} is above the autonomy ceiling"
    if limit_problems:
        return f"above the function's limits ({limit_problems[0]})"
    if not targets:
        return f"{step.tool} binds no target"
    return None


@dataclass(frozen=True)
class Outcomes:
    """Successes of n recorded outcomes, in one arm."""

    successes: int = 0
    n: int = 0

    @property
    def rate(self) -> float | None:
        return self.successes / self.n if self.n else None


def outcomes_worse(treated: Outcomes, control: Outcomes, confidence: float) -> tuple[bool, str]:
    """Whether ``treated`` succeeds less than ``control`` at ``confidence`` (one-sided
    two-proportion z-test, pooled), and the figures in words."""
    if not treated.n or not control.n:
        return False, (f"outcomes: {treated.successes}/{treated.n} succeeded vs control "
                       f"{control.successes}/{control.n}: no evidence either way yet")
    pooled = (treated.successes + control.successes) / (treated.n + control.n)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / treated.n + 1 / control.n))
    diff = (treated.rate or 0.0) - (control.rate or 0.0)
    z = diff / spread if spread > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    worse = z < -NormalDist().inv_cdf(confidence)
    return worse, (f"outcomes: {treated.successes}/{treated.n} succeeded vs control "
                   f"{control.successes}/{control.n} (z = {z:.2f}; worse at {confidence:.0%}: "
                   f"{'yes' if worse else 'no'})")


def run_of_approvals(answers: Sequence[tuple[str, str]]) -> tuple[int, list[str], str | None]:
    """From a class's answers newest first (status, approver): how many plain approvals
    in a row end the record, by whom, and what broke the run before them (None: nothing
    since the class's last change of state)."""
    run, people = 0, []
    for status, approver in answers:
        if status == "autonomy":
            continue
        if status != "approved":
            return run, people, status
        run += 1
        if approver not in people:
            people.append(approver)
    return run, people, None


@dataclass(frozen=True)
class ClassEvidence:
    """What the record says of one class, as stored with a promotion or demotion."""

    key: str
    function: str
    run: int
    approvers: list[str]
    broken_by: str | None
    counts: dict[str, int] = field(default_factory=dict)
    treated: Outcomes = Outcomes()
    control: Outcomes = Outcomes()
    outcomes_text: str = ""
    worse: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["treated"], data["control"] = asdict(self.treated), asdict(self.control)
        return data


def verdict(evidence: ClassEvidence, *, after: int, approvers: int) -> str | None:
    """None when the class is promoted by the record, else what it still lacks."""
    if evidence.worse:
        return "outcomes worse than the control group"
    if evidence.run < after:
        return f"{evidence.run} of {after} approvals in a row"
    if len(evidence.approvers) < approvers:
        return (f"{evidence.run} approvals in a row, but by {len(evidence.approvers)} "
                f"approver{'s' if len(evidence.approvers) != 1 else ''} (needs {approvers})")
    return None
