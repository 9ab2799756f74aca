"""The crash cases of the fault suite (test_crash_and_kill.py): for each crash point of
``agent.faults``, plans that reach it, each with

- ``prepare``: sets the case up in-process, in a store of its own, and returns the
  arguments of the ``decisionops`` command that is to crash there;
- ``reached``: checks, from the store after the crash, that the crash happened where the
  case means it to (so a change in the product cannot quietly turn a case into another);
- ``ends``: the terminal status each decision's answers call for, once the loop has run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from decisionops.agent.models import (
    Answer,
    Approve,
    DecisionStatus,
    Prediction,
    Reject,
    Revise,
    decision_id_for,
    utcnow,
)
from decisionops.agent.runtime import Runtime
from decisionops.agent.store import ApprovalRow
from decisionops.agent.worker import Worker
from tests.reliability.harness import SCALE, Place
from tests.support import approver, start_decisions

__all__ = ["CASES", "CHURN", "FAILURE", "RUN", "Case", "churn", "failure"]

CHURN = decision_id_for("churn-0")
"""A multi-wave plan: sales (offer, then a task) and finance (a credit after the offer)
answer; support is approved by policy."""
FAILURE = decision_id_for("failure-0")
"""An all-or-nothing plan: maintenance, supply chain, then operations answer."""


# ---------------------------------------------------------------------- predictions


def churn(rt: Runtime, n: int = 0) -> Prediction:
    accounts = [a["account_id"] for a in rt.enterprise.rows("accounts")
                if "ignore" not in (a["notes"] or "").lower()]
    return Prediction(id=f"churn-{n}", model="churn-gbm", kind="churn", entity_type="account",
                      entity_id=accounts[n], score=0.9, value_at_stake=30_000,
                      features={"segment": "enterprise", "plan": "scale"},
                      observed_at="2026-11-20T08:00:00Z")


def failure(rt: Runtime, n: int = 0) -> Prediction:
    asset = [a for a in rt.enterprise.rows("assets") if a["spare_part_sku"]][n]
    return Prediction(id=f"failure-{n}", model="asset-failure-lstm", kind="failure",
                      entity_type="asset", entity_id=asset["asset_id"], score=0.8,
                      value_at_stake=50_000,
                      features={"site": asset["site"], "asset_class": asset["asset_class"],
                                "spare_part_sku": asset["spare_part_sku"],
                                "remaining_useful_life_hours": 100},
                      observed_at="2026-11-20T08:00:01Z")


def _start(rt: Runtime, *predictions: Prediction) -> None:
    rt.ingest(list(predictions), source="fault-suite")
    rt.triage_pending()
    start_decisions(rt)


def _pending(rt: Runtime, decision_id: str) -> dict[str, ApprovalRow]:
    return {a.function: a for a in rt.store.approvals.list(decision_id=decision_id,
                                                           status="pending")}


def _first_approver(rt: Runtime, function: str) -> str:
    return rt.policies.get(function).approvers[0]


def _say(rt: Runtime, row: ApprovalRow, reply: Answer) -> None:
    """Record an answer only (``--no-apply``): the crashing process applies it."""
    rt.approvals.answer(row.id, reply, by=approver(rt, _first_approver(rt, row.function)))


# ---------------------------------------------------------------------- crash cases
# prepare: set the case up in-process; returns the arguments of the command that crashes.
# reached: from the store, that the crash happened where the case means it to.


def _fresh(rt: Runtime) -> list[str]:
    rt.ingest([churn(rt), failure(rt)], source="fault-suite")
    return ["run", "--once"]


def _revise(rt: Runtime) -> list[str]:
    _start(rt, churn(rt))
    asked = _pending(rt, CHURN)
    # finance first: a revise withdraws the requests still pending of its version
    _say(rt, asked["finance"], Approve())
    _say(rt, asked["sales"], Revise(feedback="offer a 15% discount instead"))
    return ["run", "--once"]


def _last_answer_by_cli(function: str) -> Callable[[Runtime], list[str]]:
    def prepare(rt: Runtime) -> list[str]:
        _start(rt, churn(rt))
        asked = _pending(rt, CHURN)
        for other, row in asked.items():
            if other != function:
                _say(rt, row, Approve())
        return ["approvals", "approve", asked[function].id, "--as",
                _first_approver(rt, function)]
    return prepare


def _world_changed(rt: Runtime) -> list[str]:
    # After routing, the billing system itself (not a tool call) books a credit on the
    # account: finance's preview moved.
    _start(rt, churn(rt))
    account = rt.store.decisions.get(CHURN).entity_id
    with sqlite3.connect(rt.enterprise.url.removeprefix("sqlite:///")) as conn:
        conn.execute("insert into credits (credit_id, account_id, amount, currency, reason, "
                     "status, created_at) values ('CRD-BY-HAND', ?, 75, 'EUR', "
                     "'booked by billing', 'issued', '2026-11-21T08:00:00Z')", (account,))
    for row in _pending(rt, CHURN).values():
        _say(rt, row, Approve())
    return ["run", "--once"]


def _failure_answered(rt: Runtime) -> list[str]:
    _start(rt, failure(rt))
    for row in _pending(rt, FAILURE).values():
        _say(rt, row, Approve())
    return ["run", "--once"]


def _finance_rejects(rt: Runtime) -> list[str]:
    _start(rt, churn(rt))
    asked = _pending(rt, CHURN)
    _say(rt, asked["sales"], Approve())
    _say(rt, asked["finance"], Reject(reason="no credit this quarter"))
    return ["run", "--once"]


def _compensating_after_hold(rt: Runtime) -> list[str]:
    # Operations on hold: the first wave acts and the decision waits, held, before the
    # downtime; released, the downtime fails for good and the first wave is compensated.
    _start(rt, failure(rt))
    rt.approvals.hold("operations", until=utcnow() + timedelta(hours=1),
                      reason="fault suite: no downtime yet", actor="fault-suite")
    for row in _pending(rt, FAILURE).values():
        _say(rt, row, Approve())
    Worker(rt).apply(FAILURE)
    assert rt.store.decisions.get(FAILURE).status == DecisionStatus.HELD
    rt.enterprise.inject_fault("operations.schedule_downtime", "fail_permanent")
    rt.approvals.release("operations", actor="fault-suite")
    return ["run", "--once"]


def _revised_by_cli(rt: Runtime) -> list[str]:
    # The others approve; maintenance's answer, the last, asks for a revision: the leg
    # that applies the three answers re-drafts and routes plan v2, then waits on people.
    _start(rt, failure(rt))
    asked = _pending(rt, FAILURE)
    for function, row in asked.items():
        if function != "maintenance":
            _say(rt, row, Approve())
    return ["approvals", "revise", asked["maintenance"].id, "--as",
            _first_approver(rt, "maintenance"), "--feedback", "make the repair due within 168 hours"]


def _effect_keys(place: Place) -> set[str]:
    with sqlite3.connect(place.enterprise_db) as conn:
        return {k for (k,) in conn.execute("select idempotency_key from tool_calls")}


def _checkpoint(rt: Runtime, decision_id: str) -> object:
    return rt.graph.get_state(rt.engine.config(decision_id))


def _no_checkpoint_yet(rt: Runtime, place: Place) -> None:
    churn, failure = rt.store.decisions.get(CHURN), rt.store.decisions.get(FAILURE)
    assert churn.status == DecisionStatus.AWAITING_APPROVAL, churn
    assert set(_pending(rt, CHURN)) == {"sales", "finance"}
    assert not _checkpoint(rt, CHURN).values  # type: ignore[attr-defined]
    # Claimed in the same batch, never started: leased to the dead process.
    assert failure.status == DecisionStatus.PLANNING and failure.lease_owner, failure
    assert not _checkpoint(rt, FAILURE).values  # type: ignore[attr-defined]


def _replan_routed(rt: Runtime, place: Place) -> None:
    assert rt.store.decisions.get(CHURN).plan_version == 2
    assert {a.plan_version for a in _pending(rt, CHURN).values()} == {2}
    values = _checkpoint(rt, CHURN).values  # type: ignore[attr-defined]
    assert values["plan"]["version"] == 1  # the revise leg was not checkpointed


def _change_recorded(rt: Runtime, place: Place) -> None:
    changes = [e for e in rt.store.ledger.search(event="preview.changed")
               if e.decision_id == CHURN]
    assert [(e.body["plan_version"], e.body["then"]) for e in changes] == [(1, "routed again")]
    assert not rt.store.executions.list(CHURN)
    assert not _effect_keys(place)
    assert _checkpoint(rt, CHURN).values["plan"]["version"] == 1  # type: ignore[attr-defined]


def _nothing_called(decision_id: str) -> Callable[[Runtime, Place], None]:
    def reached(rt: Runtime, place: Place) -> None:
        runs = rt.store.executions.list(decision_id)
        assert runs and {e.status.value for e in runs} == {"started"}, runs
        assert not _effect_keys(place)
    return reached


def _one_call_unrecorded(rt: Runtime, place: Place) -> None:
    runs = rt.store.executions.list(CHURN)
    assert 1 <= len(_effect_keys(place)) <= 2
    assert any(e.status.value == "started" for e in runs), runs


def _compensation_unrecorded(rt: Runtime, place: Place) -> None:
    runs = rt.store.executions.list(FAILURE)
    compensations = [e for e in runs if e.purpose == "compensation"]
    assert compensations and any(e.status.value == "started" for e in compensations), runs
    assert {e.idempotency_key for e in compensations} & _effect_keys(place)
    assert not rt.store.decisions.get(FAILURE).terminal


def _last_wave_unrecorded(decision_id: str, steps: int) -> Callable[[Runtime, Place], None]:
    def reached(rt: Runtime, place: Place) -> None:
        runs = rt.store.executions.list(decision_id)
        assert len(_effect_keys(place)) == steps == len(runs)
        assert any(e.status.value == "started" for e in runs), runs
        assert rt.store.decisions.get(decision_id).status == DecisionStatus.EXECUTING
    return reached


def _answers_consumed_unmarked(decision_id: str, version: int, interrupts: int
                               ) -> Callable[[Runtime, Place], None]:
    def reached(rt: Runtime, place: Place) -> None:
        assert rt.store.approvals.has_unapplied(decision_id)
        state = _checkpoint(rt, decision_id)
        assert state.values["plan"]["version"] == version  # type: ignore[attr-defined]
        assert len(state.interrupts) == interrupts  # type: ignore[attr-defined]
    return reached


@dataclass(frozen=True)
class Case:
    point: str
    shape: str
    prepare: Callable[[Runtime], list[str]]
    reached: Callable[[Runtime, Place], None]
    ends: dict[str, DecisionStatus]
    """decision → the terminal status its answers call for."""
    longer: bool = False
    """Run only with ``DECISIONOPS_FAULT_SCALE`` ≥ 2 (the default run stays short)."""


_DONE = DecisionStatus.COMPLETED
CASES = [
    Case("after_route", "new multi-wave and all-or-nothing plans claimed by one run --once",
         _fresh, _no_checkpoint_yet, {CHURN: _DONE, FAILURE: _DONE}),
    Case("after_route", "revise leg: the re-drafted plan routed, the leg not checkpointed",
         _revise, _replan_routed, {CHURN: _DONE}, longer=True),
    Case("after_preview_changed", "multi-wave plan answered; the world changed since routing",
         _world_changed, _change_recorded, {CHURN: _DONE}),
    Case("before_tool_call", "multi-wave plan, the last answer by approvals approve",
         _last_answer_by_cli("sales"), _nothing_called(CHURN), {CHURN: _DONE}),
    Case("before_tool_call", "all-or-nothing plan, answers applied by run --once",
         _failure_answered, _nothing_called(FAILURE), {FAILURE: _DONE}, longer=True),
    Case("after_tool_call", "multi-wave plan, finance rejected (its step skipped)",
         _finance_rejects, _one_call_unrecorded, {CHURN: _DONE}, longer=True),
    Case("after_tool_call", "all-or-nothing plan compensating, resumed after a hold",
         _compensating_after_hold, _compensation_unrecorded,
         {FAILURE: DecisionStatus.COMPENSATED}),
    Case("before_record", "multi-wave plan: the last wave acted, by approvals approve",
         _last_answer_by_cli("finance"), _last_wave_unrecorded(CHURN, 4), {CHURN: _DONE}),
    # Compensations are recorded as they finish: nothing is left for record to write.
    Case("before_record", "all-or-nothing plan: the last wave acted",
         _failure_answered, _last_wave_unrecorded(FAILURE, 3), {FAILURE: _DONE}, longer=True),
    Case("before_mark_applied", "revise leg: the answers consumed, the plan re-drafted",
         _revise, _answers_consumed_unmarked(CHURN, version=2, interrupts=2),
         {CHURN: _DONE}),
    Case("before_mark_applied", "all-or-nothing plan revised by approvals revise",
         _revised_by_cli, _answers_consumed_unmarked(FAILURE, version=2, interrupts=3),
         {FAILURE: _DONE}),
]


RUN = [case for case in CASES if SCALE >= 2 or not case.longer]
"""The cases this run runs (every point is covered at any scale)."""
