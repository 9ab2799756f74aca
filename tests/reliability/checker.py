"""The invariant checker: compares what was approved with what the reference
enterprise recorded, Jepsen-style, from the stored history alone.

Run it once the loop has had its chance: workers stopped, and the loop run to the end
(every answer given, every lapsed lease carried on). What is not finished then is a
finding:

- lost (invariant 1): an accepted prediction not in a terminal state: untriaged,
  actionable without a decision, a decision still waiting on a person (a pending
  request or a hold: the run ended with its work undone), a request still pending on a
  finished decision, a step recorded as succeeded with no effect at its tool, or a step
  of an executed plan that never ran nor was skipped (``proposed``).
- stuck (invariant 8): a decision not finished that waits on nothing a person can see
  (no pending request, no hold) and that the loop did not carry on, or anything left
  ``started`` (an execution or a plan step).
- duplicated (invariant 2): more than one effect for one approved step.
- unapproved (invariant 3): an effect whose idempotency key belongs to no approved step
  (or its compensation, or an SLA notification), or whose arguments hash differs from
  the approved arguments recorded in the ledger.

Verdicts of several stores add up (``+``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from decisionops.agent.executor import idempotency_key
from decisionops.agent.models import DecisionStatus, TriageAction
from decisionops.agent.store import Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify

__all__ = ["Verdict", "check"]


@dataclass
class Verdict:
    decisions: int = 0
    approved_steps: int = 0
    effects: int = 0
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unapproved: list[str] = field(default_factory=list)
    ledger_ok: bool = False

    def line(self, faults: int) -> str:
        return (f"faults injected {faults}; lost {len(self.lost)}; stuck {len(self.stuck)}; "
                f"duplicated {len(self.duplicated)}; unapproved {len(self.unapproved)}")

    def counts(self) -> str:
        """``lost 0, stuck 0, duplicated 0, unapproved 0``."""
        return (f"lost {len(self.lost)}, stuck {len(self.stuck)}, duplicated "
                f"{len(self.duplicated)}, unapproved {len(self.unapproved)}")

    @property
    def findings(self) -> list[str]:
        return ([f"lost: {x}" for x in self.lost] + [f"stuck: {x}" for x in self.stuck]
                + [f"duplicated: {x}" for x in self.duplicated]
                + [f"unapproved: {x}" for x in self.unapproved]
                + ([] if self.ledger_ok else ["the ledger does not verify"]))

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(self.decisions + other.decisions,
                       self.approved_steps + other.approved_steps,
                       self.effects + other.effects, self.lost + other.lost,
                       self.stuck + other.stuck, self.duplicated + other.duplicated,
                       self.unapproved + other.unapproved, self.ledger_ok and other.ledger_ok)


def check(store: Store, enterprise_db: Path, *, label: str = "",
          describe: Callable[[str], str] | None = None) -> Verdict:
    """The verdict on ``store`` and the enterprise whose tools it called; ``label``
    prefixes every finding (which run or case it comes from); ``describe`` adds what else
    is known of a stuck decision (its graph checkpoint)."""
    verdict = _check(store, enterprise_db, describe)
    if label:
        for kind in (verdict.lost, verdict.stuck, verdict.duplicated, verdict.unapproved):
            kind[:] = [f"[{label}] {x}" for x in kind]
    return verdict


def _check(store: Store, enterprise_db: Path, describe: Callable[[str], str] | None
           ) -> Verdict:
    verdict = Verdict()
    with store.reading() as conn:
        predictions = conn.execute(select(t.predictions.c.id, t.predictions.c.triage_action)).all()
        decisions = {r.id: r for r in conn.execute(select(t.decisions))}
        pending = conn.execute(select(t.approvals.c.id, t.approvals.c.decision_id).where(
            t.approvals.c.status == "pending")).all()
        executions = conn.execute(select(t.executions)).all()
        steps = conn.execute(select(t.plan_steps.c.decision_id, t.plan_steps.c.plan_version,
                                    t.plan_steps.c.step_id, t.plan_steps.c.function,
                                    t.plan_steps.c.status)).all()
        # Every answer that grants approval carries approved_hashes (agent.approvals):
        # the approver's, the policy's, an expiry's; nothing else does.
        approvals = conn.execute(select(t.ledger.c.decision_id, t.ledger.c.plan_hash,
                                        t.ledger.c.body)
                                 .where(t.ledger.c.event.like("approval.%"))).all()
    holds = store.holds.active()
    verdict.decisions = len(decisions)
    started = {d.prediction_id for d in decisions.values()}
    for pid, action in predictions:
        if action is None:
            verdict.lost.append(f"prediction {pid} never triaged")
        elif action == TriageAction.ACT.value and pid not in started:
            verdict.lost.append(f"prediction {pid} actionable but no decision")

    waiting: dict[str, list[str]] = defaultdict(list)
    for approval_id, decision_id in pending:
        waiting[decision_id].append(approval_id)
    functions: dict[str, set[str]] = defaultdict(set)
    for decision_id, version, _step, function, _status in steps:
        d = decisions.get(decision_id)
        if d is not None and d.plan_version == version:
            functions[decision_id].add(function)
    for d in decisions.values():
        if DecisionStatus(d.status).terminal:
            verdict.lost += [f"approval {a} still pending on {d.id}, finished {d.status}"
                             for a in waiting[d.id]]
            continue
        held = holds.why(entity_id=d.entity_id, playbook=d.playbook,
                         functions=functions[d.id])
        if waiting[d.id] or held:
            why = (f"pending {', '.join(sorted(waiting[d.id]))}" if waiting[d.id] else held)
            verdict.lost.append(f"decision {d.id} not finished ({d.status}), waiting on {why}")
        else:
            requests = "; ".join(f"v{a.plan_version} {a.function} {a.status.value}"
                                 f"{' applied' if a.applied_at else ''}"
                                 for a in store.approvals.list(decision_id=d.id))
            events = [f"{e.event} by {e.actor}" for e in store.ledger.entries(d.id)][-12:]
            verdict.stuck.append(f"decision {d.id} stuck in {d.status} (plan v{d.plan_version})"
                                 f": no pending request, no hold (lease "
                                 f"{d.lease_owner or 'none'}, error {d.error!r}); requests: "
                                 f"{requests}; last events: {', '.join(events)}"
                                 + (f"; graph: {describe(d.id)}" if describe else ""))

    # Approved steps, from the ledger: (decision, step) -> approved arguments hash.
    approved: dict[str, tuple[str, str, str]] = {}
    for decision_id, plan_hash, body in approvals:
        if decisions.get(decision_id) is None or decisions[decision_id].plan_hash != plan_hash:
            continue  # approvals of superseded plan versions
        for step_id, args_hash in (body.get("approved_hashes") or {}).items():
            approved[idempotency_key(decision_id, step_id, args_hash)] = (decision_id, step_id,
                                                                          args_hash)
    verdict.approved_steps = len(approved)
    by_key = {e.idempotency_key: e for e in executions}
    compensations = {e.idempotency_key for e in executions if e.purpose == "compensation"}

    with sqlite3.connect(enterprise_db) as conn:
        effects = conn.execute("select idempotency_key, tool, arguments_hash from tool_calls"
                               ).fetchall()
    verdict.effects = len(effects)
    per_step: Counter[tuple[str, str]] = Counter()
    effect_keys = set()
    for key, tool, args_hash in effects:
        effect_keys.add(key)
        if key.startswith("sla_"):
            continue
        if key in compensations:
            continue
        if key not in approved:
            verdict.unapproved.append(f"effect {tool} {key}: no approved step has this key")
            continue
        decision_id, step_id, approved_hash = approved[key]
        if args_hash != approved_hash:
            verdict.unapproved.append(f"effect {tool} {key}: its arguments are not the approved "
                                      "ones")
        per_step[(decision_id, step_id)] += 1
    verdict.duplicated = [f"{d}:{s} has {n} effects" for (d, s), n in per_step.items() if n > 1]
    for e in executions:
        if e.status == "started":
            verdict.stuck.append(f"{e.decision_id}:{e.step_id} {e.purpose} left 'started'")
    for key, (decision_id, step_id, _) in approved.items():
        execution = by_key.get(key)
        if decisions[decision_id].status in (DecisionStatus.REJECTED.value,):
            continue
        if execution is None:
            continue  # skipped (a dependency failed or its function rejected): no call made
        if execution.status == "succeeded" and key not in effect_keys:
            verdict.lost.append(f"{decision_id}:{step_id} succeeded without an effect")
    executed = {DecisionStatus.COMPLETED.value, DecisionStatus.FAILED.value,
                DecisionStatus.COMPENSATED.value}
    for decision_id, version, step_id, _function, status in steps:
        d = decisions.get(decision_id)
        if d is None or d.plan_version != version or d.status not in executed:
            continue
        if status == "started":
            verdict.stuck.append(f"{decision_id}:{step_id} plan step left 'started'")
        elif status in ("proposed", "held"):
            verdict.lost.append(f"{decision_id}:{step_id} never ran nor was skipped")
    verdict.ledger_ok = verify(store.engine).ok
    return verdict
