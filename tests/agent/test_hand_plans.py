"""Planning by hand from the needs-a-human queue: a person's steps become the decision's
first plan (planner ``hand``) through the normal claim path; the plan passes the same
guard, target check and routing as any plan, each function still approves its part,
and the author counts as the requester for four-eyes. A refused plan changes nothing;
a revise answer sends the decision back to a person with the feedback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from decisionops.agent.errors import ConflictError, InvalidInputError, PermissionDenied
from decisionops.agent.models import Approve, Revise
from decisionops.agent.prediction_queue import QueueUser
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify
from tests.agent.store.test_prediction_views import predict
from tests.support import answer, pending, start_decisions

OPS = QueueUser("olga@ops", "operator", "test")

STEPS = """
- id: offer
  function: sales
  tool: crm.create_retention_offer
  arguments: {account_id: ACC-10001, offer_type: discount, discount_pct: 10,
              duration_months: 6}
  risk: medium
  rationale: a loyal account flagged by the fraud model; keep them
- id: credit
  function: finance
  tool: finance.issue_credit
  arguments: {account_id: ACC-10001, amount: 150, currency: EUR, reason: goodwill}
  depends_on: [offer]
  risk: medium
"""


@pytest.fixture(params=["sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    with Runtime(Settings(home=tmp_path / "home", database_url=url, holdout_share=0.0),
                 actor="w") as runtime:
        runtime.ingest([predict("p-fraud", "fraud", "ACC-10001", 0.96),
                        predict("p-act", "churn", "ACC-10003", 0.9, hours=2)], source="feed")
        runtime.triage_pending()
        start_decisions(runtime)  # p-act's: what follows starts only the hand plan's
        yield runtime


def _state(rt: Runtime) -> tuple:
    views = rt.store.prediction_views.list(limit=100)
    with rt.store.reading() as conn:
        hand = conn.scalar(select(func.count()).select_from(t.hand_plans))
    return (len(rt.store.ledger.entries()), hand,
            sorted((v.id, v.outcome, v.reason, v.detail) for v in views))


def test_a_hand_plan_is_stored_and_starts_its_decision_through_the_loop(rt: Runtime) -> None:
    view = rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS, note="call first")
    assert (view.outcome, view.reason, view.playbook) == ("act", "planned_by_hand", None)
    assert view.detail == ("planned by hand by olga@ops: 2 step(s) for finance, sales; "
                           "call first")
    stored = rt.store.hand_plans.get("p-fraud")
    assert stored is not None and stored.author == "olga@ops"
    assert view.hand_plan == {"author": "olga@ops", "hash": stored.hash,
                              "at": stored.created_at}  # shown with the prediction
    assert rt.store.prediction_views.get("p-act").hand_plan is None
    (entry,) = [e for e in rt.store.ledger.entries() if e.event == "prediction.planned_by_hand"]
    assert (entry.actor, entry.body["plan_hash"]) == ("olga@ops", stored.hash)
    assert entry.body["steps"] == ["sales:offer:crm.create_retention_offer",
                                   "finance:credit:finance.issue_credit"]
    assert rt.queue.list() == []

    (started,) = start_decisions(rt)
    decision = rt.store.decisions.get(started.decision_id)
    assert decision.prediction_id == "p-fraud" and decision.plan_hash == stored.hash
    plan = rt.store.plans.get(decision.id)
    assert (plan.planner, plan.playbook) == ("hand", None)
    assert plan.rationale.startswith("written by hand by olga@ops")
    assert rt.store.plans.row(decision.id, 1)["meta"]["planner"] == "hand"
    # Nothing about approval is relaxed: each function approves its part.
    asked = pending(rt, decision.id)
    assert set(asked) == {"sales", "finance"}
    assert not rt.enterprise.effects("crm.create_retention_offer")
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
    assert not rt.enterprise.effects("crm.create_retention_offer")
    result = answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result is not None and result.status == "completed"
    (offer,) = rt.enterprise.effects("crm.create_retention_offer")
    assert offer.arguments["discount_pct"] == 10
    (credit,) = rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 150


def test_json_and_a_mapping_with_a_rationale_are_accepted(rt: Runtime) -> None:
    spec = {"rationale": "keep them", "steps": [{
        "id": "task", "function": "sales", "tool": "crm.create_task",
        "arguments": {"account_id": "ACC-10001", "owner_role": "account_manager",
                      "subject": "call", "due_in_days": 2}, "risk": "low"}]}
    rt.queue.plan_by_hand("p-fraud", json.dumps(spec), by=OPS)
    (started,) = start_decisions(rt)
    plan = rt.store.plans.get(started.decision_id)
    assert plan.rationale == "written by hand by olga@ops: keep them"


@pytest.mark.parametrize(("steps", "said"), [
    # the guard's own problems, named by step and field
    (STEPS.replace("tool: finance.issue_credit", "tool: crm.create_task"),
     "steps.credit.tool: crm.create_task is not allowed for finance"),
    (STEPS.replace("amount: 150", "amount: 999999"), "steps.credit.arguments.amount"),
    (STEPS.replace("discount_pct: 10", "discount_pct: oops"),
     "steps.offer.arguments.discount_pct"),
    (STEPS.replace("function: sales", "function: marketing"),
     "steps.offer.function: unknown function 'marketing'"),
    (STEPS.replace("tool: crm.create_retention_offer", "tool: crm.delete_everything"),
     "steps.offer.tool: unknown tool"),
    # the Step model and the DAG
    (STEPS.replace("depends_on: [offer]", "depends_on: [nope]"), "unknown step 'nope'"),
    (STEPS.replace("risk: medium", "risk: tiny", 1), "steps.0.risk"),
    (STEPS.replace("  rationale: a loyal", "  colour: red\n  rationale: a loyal"),
     "steps.0.colour"),
    ("[]", "non-empty list"),
    ("- id: [unclosed", "not valid YAML or JSON"),
    ("just text", "a list of steps"),
    ("{steps: [], bogus: 1}", "unknown field(s) bogus"),
])
def test_a_plan_the_guard_or_the_model_refuses_changes_nothing(rt: Runtime, steps: str,
                                                              said: str) -> None:
    before = _state(rt)
    with pytest.raises(InvalidInputError) as caught:
        rt.queue.plan_by_hand("p-fraud", steps, by=OPS)
    assert caught.value.field == "steps"
    assert said in caught.value.message
    assert _state(rt) == before
    assert start_decisions(rt) == []


@pytest.mark.parametrize(("pid", "by", "error"), [
    ("p-fraud", QueueUser("feed", "ingest", "test"), PermissionDenied),
    ("p-act", OPS, ConflictError),  # acted on already: not in the queue
])
def test_who_may_plan_by_hand_is_the_queues_rule(rt: Runtime, pid: str, by: QueueUser,
                                                 error: type[Exception]) -> None:
    before = _state(rt)
    with pytest.raises(error):
        rt.queue.plan_by_hand(pid, STEPS, by=by)
    assert _state(rt) == before


def test_the_author_is_not_the_sole_approver_under_four_eyes(rt: Runtime) -> None:
    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"four_eyes": True})
    rt.store.users.create("dana@finance", role="approver", functions=["finance"], actor="t")
    dana = QueueUser("dana@finance", "approver", "test")
    rt.queue.plan_by_hand("p-fraud", STEPS, by=dana)
    (started,) = start_decisions(rt)
    asked = pending(rt, started.decision_id)
    with pytest.raises(PermissionDenied, match="four eyes"):
        answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
    assert not rt.enterprise.effects("finance.issue_credit")
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
    result = answer(rt, asked["finance"]["id"], Approve(), approver_name="omar@finance")
    assert result is not None and result.status == "completed"
    assert len(rt.enterprise.effects("finance.issue_credit")) == 1


def _revised(rt: Runtime) -> str:
    """p-fraud planned by hand, sales approves, finance asks for a revision; its decision."""
    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    (started,) = start_decisions(rt)
    asked = pending(rt, started.decision_id)
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
    answer(rt, asked["finance"]["id"], Revise(feedback="credit 120, not 150"),
           approver_name="dana@finance")
    return started.decision_id


def test_revise_on_a_hand_plan_goes_back_to_a_person_with_the_feedback(rt: Runtime) -> None:
    decision = rt.store.decisions.get(_revised(rt))
    assert decision.status.value == "needs_human"
    view = rt.store.prediction_views.get("p-fraud")
    assert (view.outcome, view.reason) == ("needs_human", "decision_needs_human")
    assert "planner hand" in (view.detail or "") and "credit 120, not 150" in (view.detail or "")
    assert [v.id for v in rt.queue.list()] == ["p-fraud"]
    assert not rt.enterprise.effects("crm.create_retention_offer")
    assert verify(rt.store.engine).ok


def test_after_a_revise_a_person_plans_it_again_as_a_follow_up_that_is_approved_again(
        rt: Runtime) -> None:
    """The revise is not a dead end (trial: a corrected plan was refused, 'a prediction
    starts one decision … can only be dismissed'): the person's new plan starts the
    decision of a follow-up prediction (``p-fraud+r2``, the same prediction), whose every
    part is approved again; the first leaves the queue naming it; the revisers of the
    first count as its requesters (four-eyes)."""
    first = _revised(rt)
    again = rt.queue.plan_by_hand("p-fraud", STEPS.replace("amount: 150", "amount: 120"),
                                  by=QueueUser("kim@ops", "operator", "test"), note="as asked")
    assert (again.id, again.outcome, again.reason) == ("p-fraud+r2", "act", "planned_by_hand")
    assert first in (again.detail or "") and "credit 120, not 150" in again.detail
    old = rt.store.prediction_views.get("p-fraud")
    assert (old.outcome, old.reason, old.detail) == (
        "drop", "replanned", "planned again by kim@ops as p-fraud+r2")
    assert rt.queue.list() == []
    follow = rt.store.predictions.get("p-fraud+r2")
    assert follow.model_dump(exclude={"id"}) == rt.store.predictions.get("p-fraud").model_dump(
        exclude={"id"})
    assert rt.store.predictions.proof("p-fraud+r2").ok  # stored as intake stores one
    (second,) = start_decisions(rt)
    assert second.decision_id == rt.store.prediction_views.get("p-fraud+r2").decision_id
    asked = pending(rt, second.decision_id)
    assert set(asked) == {"sales", "finance"}  # sales approved v1 of the first: asked again
    assert rt.store.approvals.requesters(second.decision_id, 1) >= {"kim@ops", "olga@ops",
                                                                     "dana@finance"}
    answer(rt, asked["sales"]["id"], Approve(), approver_name="raj@sales")
    answer(rt, asked["finance"]["id"], Approve(), approver_name="omar@finance")
    assert rt.store.decisions.get(second.decision_id).status.value == "completed"
    (credit,) = rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 120 and len(rt.enterprise.effects("crm.create_retention_offer")) == 1
    events = [(e.event, e.actor, e.body.get("replans")) for e in rt.store.ledger.entries()
              if e.event == "prediction.planned_by_hand"]
    assert events[-1] == ("prediction.planned_by_hand", "kim@ops", "p-fraud")
    assert pending(rt, second.decision_id) == {}
    assert verify(rt.store.engine).ok


def test_a_decision_that_ended_needing_a_person_is_picked_again_as_a_follow_up(
        rt: Runtime) -> None:
    rt.queue.plan_by_hand("p-fraud", STEPS.replace("ACC-10001", "ACC-99999"), by=OPS)
    (first,) = start_decisions(rt)  # the target check: ACC-99999 is unknown
    assert rt.store.decisions.get(first.decision_id).status.value == "needs_human"
    again = rt.queue.plan_by_hand("p-fraud", STEPS.replace("ACC-10001", "ACC-99999"), by=OPS)
    (second,) = start_decisions(rt)
    assert rt.store.decisions.get(second.decision_id).status.value == "needs_human"
    third = rt.queue.pick(again.id, "churn-retention", by=OPS)
    assert third.id == "p-fraud+r3"  # of the first one's id, not p-fraud+r2+r2
    assert [v.id for v in rt.queue.list()] == []


def test_a_decision_that_executed_steps_is_not_planned_again(rt: Runtime) -> None:
    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    (first,) = start_decisions(rt)
    with rt.store.transaction() as conn:  # as if a step ran before it ended needing a person
        conn.execute(t.decisions.update().where(t.decisions.c.id == first.decision_id)
                     .values(status="needs_human", error="stopped"))
        conn.execute(t.executions.insert().values(
            idempotency_key="k", decision_id=first.decision_id, plan_version=1,
            step_id="offer", purpose="do", tool="crm.create_retention_offer",
            arguments_hash="h", status="succeeded", attempts=1))
    before = _state(rt)
    with pytest.raises(ConflictError, match="executed steps; planning it again could repeat"):
        rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    assert _state(rt) == before


def test_a_hand_plan_for_an_unknown_entity_is_checked_like_any_plan(rt: Runtime) -> None:
    rt.queue.plan_by_hand("p-fraud", STEPS.replace("ACC-10001", "ACC-99999"), by=OPS)
    (started,) = start_decisions(rt)
    assert rt.store.decisions.get(started.decision_id).status.value == "needs_human"
    assert pending(rt, started.decision_id) == {}
    assert "ACC-99999" in (rt.store.prediction_views.get("p-fraud").detail or "")


def test_two_workers_picking_a_hand_plan_up_start_one_decision(rt: Runtime) -> None:
    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    first = rt.store.decisions.claim_new(owner=rt.engine.owner, lease_seconds=60)
    second = rt.store.decisions.claim_new(owner="another-worker", lease_seconds=60)
    assert [c.prediction_id for c in first] == ["p-fraud"] and second == []
    rt.engine.start(first[0])
    with pytest.raises(ConflictError, match="started already"):
        rt.engine.start(first[0])  # the same claim delivered twice
    with rt.store.reading() as conn:
        decisions = conn.scalar(select(func.count()).select_from(t.decisions).where(
            t.decisions.c.prediction_id == "p-fraud"))
        versions = conn.scalar(select(func.count()).select_from(t.plans).where(
            t.plans.c.decision_id == first[0].decision_id))
    assert (decisions, versions) == (1, 1)
    assert set(pending(rt, first[0].decision_id)) == {"sales", "finance"}


def test_a_hand_plan_is_used_only_for_its_own_decision(rt: Runtime) -> None:
    from decisionops.agent.planner import PlanRequest

    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    other = rt.planner.draft(PlanRequest(
        decision_id="dec_eval_1", prediction=rt.store.predictions.get("p-fraud"),
        playbook="churn-retention"))
    assert other.plan is not None and other.plan.planner == "playbook"


def test_a_stored_hand_plan_that_no_longer_matches_its_hash_is_not_used(rt: Runtime) -> None:
    from sqlalchemy import update

    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    body = rt.store.hand_plans.get("p-fraud").body
    body["steps"][1]["arguments"]["amount"] = 90  # under the auto-approve limit
    with rt.store.transaction() as conn:
        conn.execute(update(t.hand_plans).values(body=body))
    (started,) = start_decisions(rt)
    assert rt.store.decisions.get(started.decision_id).status.value == "needs_human"
    assert pending(rt, started.decision_id) == {}
    assert "hash" in (rt.store.prediction_views.get("p-fraud").detail or "")
    assert not rt.enterprise.effects("finance.issue_credit")


def test_a_plan_cannot_rate_a_step_below_its_tool_s_risk(rt: Runtime) -> None:
    # A retention offer is a medium-risk tool; sales approves low-risk steps without a
    # person. A plan (by hand, or a model's) that calls the step low does not make it
    # low: the step keeps its tool's risk, and sales is asked.
    offer = STEPS.split("- id: credit")[0].replace("duration_months: 6}\n  risk: medium",
                                                    "duration_months: 6}\n  risk: low")
    assert "risk: low" in offer
    rt.queue.plan_by_hand("p-fraud", offer, by=OPS)
    (started,) = start_decisions(rt)
    (step,) = rt.store.plans.get(started.decision_id).steps
    assert step.risk == "medium"
    assert set(pending(rt, started.decision_id)) == {"sales"}
    assert not rt.enterprise.effects("crm.create_retention_offer")


def test_a_step_acting_on_another_account_than_the_prediction_s_goes_to_people(
        rt: Runtime) -> None:
    # p-fraud is about ACC-10001. A ticket is low risk and support approves those
    # without a person, but not one about another account: whoever wrote the plan, the
    # function's approvers are asked, and the request says whose account it acts on.
    ticket = """
- id: ticket
  function: support
  tool: support.open_ticket
  arguments: {account_id: ACC-10005, priority: high, subject: call them, body: about fraud}
  risk: low
- id: own
  function: support
  tool: support.open_ticket
  arguments: {account_id: ACC-10001, priority: high, subject: call them, body: about fraud}
  risk: low
"""
    rt.queue.plan_by_hand("p-fraud", ticket, by=OPS)
    (started,) = start_decisions(rt)
    asked = pending(rt, started.decision_id)
    assert set(asked) == {"support"}
    reason = rt.store.approvals.get(asked["support"]["id"]).reason or ""
    assert "step ticket acts on account_id=ACC-10005, not on ACC-10001" in reason, reason
    assert not rt.enterprise.effects("support.open_ticket")


def test_a_hand_plan_the_world_changed_under_says_so_not_no_feedback(rt: Runtime) -> None:
    """A new version of a hand plan is asked for on a revise, or when the world changed
    under the approved plan: the second has no feedback, and the person is told why."""
    from decisionops.agent.hand_plans import HandPlanner
    from decisionops.agent.planner import PlanRequest

    rt.queue.plan_by_hand("p-fraud", STEPS, by=OPS)
    (started,) = start_decisions(rt)
    decision = rt.store.decisions.get(started.decision_id)
    planner = rt.planner
    assert isinstance(planner, HandPlanner)
    request = PlanRequest(decision_id=decision.id, version=2, playbook=decision.playbook,
                          prediction=rt.store.predictions.get("p-fraud"))
    fallback = planner.draft(request).record.fallback or ""
    assert "the world changed since it was approved" in fallback
    assert "no feedback" not in fallback
