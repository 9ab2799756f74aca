"""The invariant checker: compares what was approved with what the reference
enterprise recorded, Jepsen-style, from the stored history alone.

- lost: an accepted prediction not in a terminal state (untriaged, actionable without a
  decision, decision not finished, approval still pending), or an approved step whose
  execution ended neither succeeded, failed, skipped nor compensated, or a step recorded
  as succeeded with no effect at its tool.
- duplicated: more than one effect for one approved step.
- unapproved: an effect whose idempotency key belongs to no approved step (or its
  compensation, or an SLA notification), or whose arguments hash differs from the
  approved arguments recorded in the ledger.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from agent.executor import idempotency_key
from agent.models import DecisionStatus, TriageAction
from agent.store import Store
from agent.store import _tables as t
from agent.store.ledger import verify


@dataclass
class Verdict:
    decisions: int = 0
    approved_steps: int = 0
    effects: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unapproved: list[str] = field(default_factory=list)
    ledger_ok: bool = False

    def line(self, faults: int) -> str:
        return (f"faults injected {faults}; lost {len(self.lost)}; duplicated "
                f"{len(self.duplicated)}; unapproved {len(self.unapproved)}")


def check(store: Store, enterprise_db: Path) -> Verdict:
    verdict = Verdict()
    with store.reading() as conn:
        predictions = conn.execute(select(t.predictions.c.id, t.predictions.c.triage_action)).all()
        decisions = {r.id: r for r in conn.execute(select(t.decisions))}
        pending = conn.execute(select(t.approvals.c.id).where(
            t.approvals.c.status == "pending")).scalars().all()
        executions = conn.execute(select(t.executions)).all()
        steps = conn.execute(select(t.plan_steps.c.decision_id, t.plan_steps.c.plan_version,
                                    t.plan_steps.c.step_id, t.plan_steps.c.status)).all()
        # Every answer that grants approval carries approved_hashes (agent.approvals):
        # the approver's, the policy's, an expiry's; nothing else does.
        approvals = conn.execute(select(t.ledger.c.decision_id, t.ledger.c.plan_hash,
                                        t.ledger.c.body)
                                 .where(t.ledger.c.event.like("approval.%"))).all()
    verdict.decisions = len(decisions)
    started = {d.prediction_id for d in decisions.values()}
    for pid, action in predictions:
        if action is None:
            verdict.lost.append(f"prediction {pid} never triaged")
        elif action == TriageAction.ACT.value and pid not in started:
            verdict.lost.append(f"prediction {pid} actionable but no decision")
    for d in decisions.values():
        if not DecisionStatus(d.status).terminal:
            verdict.lost.append(f"decision {d.id} stuck in {d.status}")
    verdict.lost += [f"approval {a} still pending" for a in pending]

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
    for key, (decision_id, step_id, _) in approved.items():
        execution = by_key.get(key)
        if decisions[decision_id].status in (DecisionStatus.REJECTED.value,):
            continue
        if execution is None:
            continue  # skipped (a dependency failed or its function rejected): no call made
        if execution.status == "started":
            verdict.lost.append(f"{decision_id}:{step_id} execution left 'started'")
        if execution.status == "succeeded" and key not in effect_keys:
            verdict.lost.append(f"{decision_id}:{step_id} succeeded without an effect")
    executed = {DecisionStatus.COMPLETED.value, DecisionStatus.FAILED.value,
                DecisionStatus.COMPENSATED.value}
    for decision_id, version, step_id, status in steps:
        d = decisions.get(decision_id)
        if d is not None and d.plan_version == version and d.status in executed \
                and status in ("proposed", "started"):
            verdict.lost.append(f"{decision_id}:{step_id} never finished ({status})")
    verdict.ledger_ok = verify(store.engine).ok
    return verdict
