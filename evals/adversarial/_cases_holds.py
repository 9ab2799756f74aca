"""Finding 6: operator holds. Answers recorded for a held entity or playbook are not
applied, and steps of a held entity, playbook or function do not start, until the hold
is released; then the work carries on. The audit's ``hold`` rule judges every effect's
write-ahead record against every hold ever placed."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from decisionops.agent.models import Approve, utcnow
from decisionops.evals.adversarial._arena import APPROVERS, Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World

__all__ = ["CASES"]

CASES = CaseList()


def _answered(world: World) -> tuple[Arena, str]:
    """A churn decision whose requests are answered (approve) but not yet applied."""
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    for function, row in arena.pending(decision).items():
        arena.answer(row, Approve(), by=APPROVERS[function][0], apply=False)
    return arena, decision


def _hold(arena: Arena, target: str) -> None:
    arena.rt.approvals.hold(target, until=utcnow() + timedelta(days=1), reason="dispute",
                            actor="olga@ops-desk")


def _released_runs(arena: Arena, decision: str, target: str) -> None:
    arena.rt.approvals.release(target, actor="olga@ops-desk")
    arena.work()
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)} "
                "after the release")
    arena.check(len(arena.effects()) == 4, f"effects after the release: {arena.effects()}")


def _nothing_applied(arena: Arena, decision: str) -> None:
    arena.work()
    arena.check(not arena.effects(), f"effects during the hold: {arena.effects()}")
    arena.check(arena.status(decision) == "awaiting_approval",
                f"decision {arena.status(decision)} during the hold")
    arena.check(arena.rt.store.approvals.has_unapplied(decision),
                "the answers were consumed during the hold")


@CASES.add("hold-entity", "holds", "answers for a held account wait until the release")
def _entity(world: World) -> None:
    arena, decision = _answered(world)
    _hold(arena, "ACC-10004")
    _nothing_applied(arena, decision)
    _released_runs(arena, decision, "ACC-10004")


@CASES.add("hold-playbook", "holds", "answers under a held playbook wait until the release")
def _playbook(world: World) -> None:
    arena, decision = _answered(world)
    _hold(arena, "churn-retention")
    _nothing_applied(arena, decision)
    _released_runs(arena, decision, "churn-retention")


@CASES.add("hold-function", "holds",
           "finance is held: its credit waits, the other functions' steps go ahead")
def _function(world: World) -> None:
    arena, decision = _answered(world)
    _hold(arena, "finance")
    arena.work()
    arena.check(not arena.effects("finance.issue_credit"), "the credit ran during the hold")
    arena.check(arena.effects("crm.create_retention_offer"), "sales did not go ahead")
    arena.check(arena.status(decision) == "held", f"decision {arena.status(decision)}")
    _released_runs(arena, decision, "finance")


@CASES.add("hold-mid-run", "holds",
           "finance is held while the plan's first wave runs; the credit is in the second")
def _mid_run(world: World) -> None:
    arena, decision = _answered(world)
    arena.rt.enterprise.inject_fault("crm.create_retention_offer", "delay", delay_s=0.8)
    worker = threading.Thread(target=arena.work)
    worker.start()
    time.sleep(0.3)  # the first wave's calls are under way
    _hold(arena, "finance")
    worker.join(30)
    arena.check(arena.effects("crm.create_retention_offer"), "the first wave did not run")
    arena.check(not arena.effects("finance.issue_credit"), "the credit ran during the hold")
    arena.check(arena.status(decision) == "held", f"decision {arena.status(decision)}")
    _released_runs(arena, decision, "finance")


@CASES.add("hold-new-predictions", "holds",
           "a held account's new prediction is dropped at triage; another account's acts")
def _triage(world: World) -> None:
    arena = world()
    _hold(arena, "ACC-10004")
    _held, other = arena.ingest(predict("churn-1"), predict("churn-2", entity="ACC-10003"))
    arena.start()
    row = arena.rt.store.predictions.row("churn-1")
    arena.check(row is not None and (row["triage_action"], row["triage_reason"]) == ("drop", "hold"),
                f"the held account's prediction: {row and row['triage_action']}")
    arena.approve_all(other)
    arena.check(arena.status(other) == "completed", f"the other decision {arena.status(other)}")
    arena.check(not arena.effects(account_id="ACC-10004"), "the held account was acted on")
