"""Findings 7 and 8: a worker process killed at a crash point (the real ``decisionops run``
with ``DECISIONOPS_CRASH_AT``), and tools that commit an effect and then fail or time out.
Whatever happens, each approved step acts once, and nothing unapproved acts. (The
SIGKILL fault suite on PostgreSQL is ``tests/reliability/test_fault_suite.py``; these
are its light version.)"""

from __future__ import annotations

from sqlalchemy import update

from decisionops.agent.models import Approve, Revise, utcnow
from decisionops.agent.store import _tables as t
from decisionops.evals.adversarial._arena import Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World

__all__ = ["CASES"]

CASES = CaseList()


def _crash(arena: Arena, point: str) -> None:
    """``decisionops run --once`` dies at ``point``; its leases lapse (moved into the
    past rather than waited for)."""
    ran = arena.cli("run", "--once", env={"DECISIONOPS_CRASH_AT": point})
    arena.check(ran.returncode == 86, f"the worker did not crash at {point}: exit "
                f"{ran.returncode} {ran.stderr[-300:]}")
    with arena.rt.store.transaction() as conn:
        conn.execute(update(t.decisions).where(t.decisions.c.lease_owner.is_not(None))
                     .values(lease_until=utcnow()))


def _once_each(arena: Arena, count: int) -> None:
    effects = arena.rt.enterprise.effects()
    keys = [e.idempotency_key for e in effects]
    arena.check(len(keys) == len(set(keys)) == count,
                f"{len(keys)} effects ({len(set(keys))} keys), expected {count} once each")


@CASES.add("crash-after-route", "crash",
           "the worker dies after route committed the plan and its requests")
def _after_route(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    _crash(arena, "after_route")
    arena.work()  # recovery
    arena.check(set(arena.pending(decision)) == {"finance", "sales"},
                f"pending after recovery: {sorted(arena.pending(decision))}")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    _once_each(arena, 4)


@CASES.add("crash-before-mark-applied", "crash",
           "the worker dies after a leg consumed the answers, before marking them applied")
def _before_mark_applied(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    first = arena.pending(decision)
    # finance first: the revise would withdraw its request, leaving one answer to apply
    arena.answer(first["finance"], Approve(), by="dana@finance", apply=False)
    arena.answer(first["sales"], Revise(feedback="offer a 15% discount instead"), by="raj@sales",
                 apply=False)
    _crash(arena, "before_mark_applied")
    arena.work()
    again = arena.pending(decision)
    arena.check(set(again) == {"finance", "sales"}
                and {a.plan_version for a in again.values()} == {2},
                f"after recovery: {[(f, a.plan_version) for f, a in again.items()]}")
    arena.check(not arena.effects("finance.issue_credit"),
                "the credit approved for the superseded version ran")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed"
                and arena.decision(decision).plan_version == 2, "version 2 did not complete")
    _once_each(arena, 4)


@CASES.add("commit-then-fail", "tool-faults",
           "finance's system records the credit, then the connection drops (retryable)")
def _commit_then_fail(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    arena.rt.enterprise.inject_fault("finance.issue_credit", "commit_then_fail")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    (credit,) = [e for e in arena.rt.store.executions.list(decision)
                 if e.step_id == "goodwill_credit"]
    arena.check(credit.status.value == "succeeded" and credit.attempts >= 2,
                f"the credit: {credit.status.value} after {credit.attempts} attempt(s)")
    _once_each(arena, 4)


@CASES.add("commit-then-timeout", "tool-faults",
           "the CRM records the offer, then the call times out (not retryable)")
def _commit_then_timeout(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    arena.rt.enterprise.inject_fault("crm.create_retention_offer", "commit_then_timeout")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    (offer,) = [e for e in arena.rt.store.executions.list(decision)
                if e.step_id == "retention_offer"]
    arena.check(offer.status.value == "succeeded" and (offer.receipt or {}).get("_reconciled"),
                f"the offer was not reconciled from the CRM's record: {offer.status.value}")
    arena.check(arena.effects("finance.issue_credit"), "the dependent credit did not run")
    _once_each(arena, 4)


@CASES.add("fail-then-compensate", "tool-faults",
           "an all-or-nothing repair plan: the purchase order fails for good")
def _compensate(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("failure-1", kind="failure"))
    arena.start()
    arena.rt.enterprise.inject_fault("erp.create_purchase_order", "fail_permanent")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "compensated", f"decision {arena.status(decision)}")
    audit = arena.audit()
    undone = {e.step_id for e in audit.effects if e.kind == "compensation"}
    arena.check(undone == {"work_order", "downtime"}, f"compensated: {sorted(undone)}")
    arena.check(not arena.effects("erp.create_purchase_order"), "the failed order took effect")
