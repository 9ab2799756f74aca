"""The approval service's rules end to end, in process, on SQLite and PostgreSQL: locked
targets, totals across a decision's steps and across decisions, holds on in-flight work,
expiry by ``on_timeout``, and four-eyes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from decisionops.agent.errors import (
    InvalidInputError,
    LockedArgumentError,
    NotFoundError,
    PermissionDenied,
    ToolArgumentsError,
)
from decisionops.agent.housekeeping import sla_sweep
from decisionops.agent.models import Approve, Edit, Reject, Risk, utcnow
from decisionops.agent.policy import AutoApprove, Total, total_problems
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import _tables as t
from tests.graphs.conftest import churn, pending, start, steps
from tests.support import answer, approver, start_decisions

# ---------------------------------------------------------------------- targets


@pytest.mark.parametrize("change", [{"account_id": "ACC-10005"}, {"currency": "USD"},
                                    {"account_id": " ACC-10004 ", "amount": 120}])
def test_an_edit_may_not_change_what_a_step_acts_on(rt: Runtime, change: dict) -> None:
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    if change.get("account_id") == " ACC-10004 ":
        # The same account written differently is not a change: the edit goes through.
        answer(rt, finance["id"], Edit(arguments={"goodwill_credit": change}),
               approver_name="dana@finance", apply=False)
        assert rt.store.approvals.get(finance["id"]).approved_arguments["goodwill_credit"][
            "account_id"] == "ACC-10004"
        return
    before = len(rt.store.ledger.entries(decision))
    with pytest.raises(LockedArgumentError) as err:
        answer(rt, finance["id"], Edit(arguments={"goodwill_credit": change}),
               approver_name="dana@finance")
    assert err.value.field == f"arguments.goodwill_credit.{next(iter(change))}"
    assert "locked" in err.value.message
    assert rt.store.approvals.get(finance["id"]).status == "pending"
    assert len(rt.store.ledger.entries(decision)) == before  # bad input: nothing recorded
    assert rt.approvals.locked(rt.store.approvals.get(finance["id"]).request) == {
        "goodwill_credit": ["account_id", "currency"]}


@pytest.mark.parametrize(("change", "said"), [
    ({"amount": True}, "must be a number, not a boolean"),
    ({"amount": "150"}, "must be a number, not a string"),
    ({"reason": 5}, "must be a string, not a number"),
])
def test_an_edit_keeps_each_argument_s_type(rt: Runtime, change: dict, said: str) -> None:
    # An approver's edit is taken as written: `--set amount=true` is not a credit of 1.
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    before = len(rt.store.ledger.entries(decision))
    with pytest.raises(ToolArgumentsError) as err:
        answer(rt, finance["id"], Edit(arguments={"goodwill_credit": change}),
               approver_name="dana@finance")
    assert err.value.field == f"arguments.goodwill_credit.{next(iter(change))}"
    assert said in err.value.message
    assert rt.store.approvals.get(finance["id"]).status == "pending"
    assert len(rt.store.ledger.entries(decision)) == before


# ---------------------------------------------------------------------- totals


def test_total_problems_add_up_per_decision_per_target_and_in_all() -> None:
    from decisionops.agent.models import Step

    def credit(i: int, account: str, amount: float) -> Step:
        return Step(id=f"c{i}", function="finance", tool="finance.issue_credit",
                    arguments={"account_id": account, "amount": amount, "currency": "EUR"})

    steps_ = [credit(1, "A", 60), credit(2, "A", 60), credit(3, "B", 30)]
    key = lambda s: f"account_id={s.arguments['account_id']}"  # noqa: E731
    per_decision = Total(tool="finance.issue_credit", sum="amount", per="decision", max=100)
    assert total_problems([per_decision], steps_, key_of=key)[0].startswith(
        "steps.c3.arguments.amount: finance.issue_credit amount adds up to 150")
    per_target = Total(tool="finance.issue_credit", sum="amount", per="entity", max=100,
                       within_days=30)
    (problem,) = total_problems([per_target], steps_, key_of=key)
    assert "adds up to 120 for account_id=A" in problem and "within 30 days" in problem
    assert total_problems([per_target], steps_, key_of=key,
                          used=lambda total, target: 80 if target.endswith("B") else 0)[1]
    everything = Total(tool="finance.issue_credit", sum="amount", per="all", max=1000)
    assert "900 used already" in total_problems([everything], steps_, key_of=key,
                                                used=lambda total, target: 900)[0]


def _split_playbook(folder: Path, parts: int, amount: float) -> Path:
    steps_ = [{"id": f"credit_{i}", "function": "finance", "tool": "finance.issue_credit",
               "risk": "medium", "arguments": {"account_id": "{{ prediction.entity_id }}",
                                               "amount": amount, "currency": "EUR",
                                               "reason": f"part {i}"}} for i in range(parts)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "churn.yaml").write_text(yaml.safe_dump({
        "name": "churn-retention", "kind": "churn", "version": 1, "description": "split",
        "trigger": {"min_score": 0.5, "min_expected_value": 100, "cooldown_days": 0},
        "steps": steps_}))
    return folder


def _at(minute: int) -> str:
    return f"2026-11-20T08:{minute:02d}:00Z"


@pytest.fixture
def split(tmp_path: Path) -> Runtime:
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01,
                        playbooks_dir=_split_playbook(tmp_path / "playbooks", 1, 90))
    with Runtime(settings, actor="test-worker") as runtime:
        approver(runtime, "dana@finance")
        yield runtime


def test_credits_to_one_account_across_decisions_add_up(split: Runtime) -> None:
    rt = split
    # (each a new reading: the loop acts once on each, tests/agent/test_triage.py)
    first = start(rt, churn("c-1", account="ACC-10004", observed_at=_at(0))).decision_id
    assert rt.store.decisions.get(first).status == "completed"  # 90: within auto-approval
    second = start(rt, churn("c-2", account="ACC-10004", observed_at=_at(1))).decision_id
    finance = pending(rt, second)["finance"]
    # 90 + 90 is over the auto-approve total of 100 per account within 30 days.
    assert "auto-approve total of 100 per target within 30 days" in finance["reason"]
    assert "90 used already" in finance["reason"]
    other = start(rt, churn("c-3", account="ACC-10005")).decision_id
    assert rt.store.decisions.get(other).status == "completed"  # another account: its own
    answer(rt, finance["id"], Approve(), approver_name="dana@finance")
    assert rt.store.decisions.get(second).status == "completed"
    assert len(rt.enterprise.effects("finance.issue_credit")) == 3


def test_the_hard_total_binds_at_approval_and_at_execution(split: Runtime) -> None:
    rt = split
    used = 0
    for n in range(12):  # 90 each; the hard total is 1000 per account within 30 days
        decision = start(rt, churn(f"h-{n}", account="ACC-10004",
                                   observed_at=_at(n))).decision_id
        requests = pending(rt, decision)
        if requests:
            if used + 90 > 1000:
                with pytest.raises(ToolArgumentsError, match="over the total of 1000"):
                    answer(rt, requests["finance"]["id"], Approve(),
                           approver_name="dana@finance")
                break
            answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
        used += 90
    assert sum(e.arguments["amount"] for e in rt.enterprise.effects("finance.issue_credit")) \
        == used <= 1000


def test_an_approval_that_slipped_past_the_total_is_refused_at_execution(
        split: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = split
    # As for a tool without a preview: here the credits issued meanwhile would change
    # the credit's preview and route the later plans again (tests/graphs/test_preview.py);
    # the executor's own check must bind even when no preview says so.
    monkeypatch.setattr(rt.approvals, "world_check", lambda plan, functions, **_: None)
    decisions = [start(rt, churn(f"r-{n}", account="ACC-10006", observed_at=_at(n))).decision_id
                 for n in range(12)]
    waiting = [pending(rt, d)["finance"] for d in decisions[1:]]
    # Approve them all without applying (the approval checks count only calls made), then
    # let the worker run them: the executor's check, in its write-ahead transaction, binds.
    for request in waiting:
        answer(rt, request["id"], Approve(), approver_name="dana@finance", apply=False)
    rt.run_once()
    credits = rt.enterprise.effects("finance.issue_credit")
    assert sum(c.arguments["amount"] for c in credits) <= 1000
    refused = [d for d in decisions if steps(rt, d).get("credit_0") == "failed"]
    assert refused
    execution = [e for e in rt.store.executions.list(refused[0])][0]
    assert "over the total of 1000 per target within 30 days" in execution.error


def test_a_plan_over_the_per_decision_total_is_refused_by_the_guard(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01,
                        playbooks_dir=_split_playbook(tmp_path / "playbooks", 6, 90))
    with Runtime(settings, actor="test-worker") as rt:
        decision = start(rt, churn()).decision_id
        row = rt.store.decisions.get(decision)
        assert row.status == "needs_human"
        assert "over the total of 500 per decision" in row.error


# ---------------------------------------------------------------------- holds


def test_a_hold_pauses_execution_before_the_held_steps_and_a_release_resumes_it(
        rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    rt.approvals.hold("finance", until=utcnow() + timedelta(hours=1), reason="close",
                      actor="ops")
    requests = pending(rt, decision)
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    result = answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    assert result.status == "held"
    # The held step says so, and why (trial 15 L7: it read "proposed", as if no one
    # had approved it yet).
    assert steps(rt, decision)["goodwill_credit"] == "held"
    (held,) = [s for s in rt.store.plans.steps(decision, 1) if s["step_id"] == "goodwill_credit"]
    assert "function finance is on hold" in held["detail"]
    assert steps(rt, decision)["retention_offer"] == "succeeded"
    assert rt.run_once().recovered == 0  # still held: nothing to do
    assert rt.approvals.held(rt.store.decisions.get(decision), ["finance"])
    rt.approvals.release("finance", actor="ops")
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "completed"
    assert steps(rt, decision)["goodwill_credit"] == "succeeded"
    assert len(rt.enterprise.effects("finance.issue_credit")) == 1
    events = [e.event for e in rt.store.ledger.entries(decision)]
    assert "decision.held" in events


def test_each_held_step_says_its_own_hold_and_the_steps_behind_it_wait(rt: Runtime) -> None:
    """Two holds on one plan: each stopped step names its own; a step that depends on
    a held one (finance's credit after sales's offer) reads held too, saying why."""
    decision = start(rt, churn()).decision_id
    until = utcnow() + timedelta(hours=1)
    rt.approvals.hold("sales", until=until, reason="pricing audit", actor="ops")
    rt.approvals.hold("support", until=until, reason="queue frozen", actor="ops")
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "held"
    detail = {s["step_id"]: (s["status"], s["detail"]) for s in rt.store.plans.steps(decision, 1)}
    assert detail["retention_offer"][0] == "held" and "pricing audit" in detail["retention_offer"][1]
    assert detail["proactive_case"][0] == "held" and "queue frozen" in detail["proactive_case"][1]
    assert detail["goodwill_credit"] == (
        "held", "waits for retention_offer, which a hold stopped")
    for target in ("sales", "support"):
        rt.approvals.release(target, actor="ops")
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "completed"
    assert set(steps(rt, decision).values()) == {"succeeded"}


def test_answers_wait_while_the_entity_is_held(rt: Runtime) -> None:
    decision = start(rt, churn()).decision_id
    rt.approvals.hold("ACC-10004", until=utcnow() + timedelta(hours=1), reason="dispute",
                      actor="ops")
    for function, request in pending(rt, decision).items():
        recorded = rt.approvals.answer(request["id"], Approve(),
                                       by=approver(rt, rt.policies.get(function).approvers[0]))
        assert recorded.held and "ACC-10004" in recorded.held
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "awaiting_approval"
    assert rt.enterprise.effects() == []
    rt.approvals.release("ACC-10004", actor="ops")
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "completed"


# ---------------------------------------------------------------------- expiry


@pytest.mark.parametrize("on_timeout", ["approve", "reject"])
def test_expiry_resolves_a_request_as_the_policy_says(rt: Runtime, on_timeout: str) -> None:
    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"on_timeout": on_timeout})
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    later = utcnow() + timedelta(hours=policy.sla_hours + 1)
    assert sla_sweep(rt, later)["expired"] == 1
    rt.run_once()
    assert rt.store.decisions.get(decision).status == "completed"
    assert rt.store.approvals.get(requests["finance"]["id"]).status == "expired"
    credits = rt.enterprise.effects("finance.issue_credit")
    assert len(credits) == (1 if on_timeout == "approve" else 0)
    assert steps(rt, decision)["goodwill_credit"] == (
        "succeeded" if on_timeout == "approve" else "skipped")


@pytest.mark.parametrize("on_timeout", ["approve", "reject"])
def test_an_answer_after_the_deadline_is_not_taken_the_request_expires(
        rt: Runtime, on_timeout: str) -> None:
    """(trial 23: an approve 28 s past the deadline was recorded and run, while the same
    function's other request, unanswered, expired in the same pass: whether a late answer
    counted depended on when the loop last swept.) A late answer is refused (409
    ``expired``) on every channel, and the request expires then, as ``on_timeout`` says;
    under a hold the clock stands still and the answer is taken."""
    from decisionops.agent.errors import ConflictError
    from decisionops.agent.store._service_tables import holds

    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"on_timeout": on_timeout})
    decisions = [start(rt, churn(f"late-{n}", account=account)).decision_id
                 for n, account in enumerate(("ACC-10004", "ACC-10005"))]
    finance = [pending(rt, d)["finance"] for d in decisions]
    for request in finance:  # their deadlines passed a minute ago
        row = rt.store.approvals.get(request["id"])
        with rt.store.engine.begin() as conn:
            conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
                deadline=utcnow() - timedelta(minutes=1)))
    verdict = "approved" if on_timeout == "approve" else "rejected"
    with pytest.raises(ConflictError, match=f"after the deadline is not taken; it expired, "
                       f"{verdict} as the finance policy's on_timeout says") as late:
        answer(rt, finance[0]["id"], Reject(reason="too late") if on_timeout == "approve"
               else Approve(), approver_name="dana@finance")
    assert late.value.details["reason"] == "expired"
    row = rt.store.approvals.get(finance[0]["id"])
    assert (row.status.value, row.approver) == ("expired", "system:sla")
    assert [e.body["reason"] for e in rt.store.ledger.entries(decisions[0])
            if e.event == "approval.refused"] == ["expired"]
    # a hold placed after the deadline stops no clock (trial 24: it revived the request,
    # and a late approve ran), nor does its release move the deadline on
    rt.approvals.hold(decisions[1], until=utcnow() + timedelta(hours=1), reason="check",
                      actor="ops")
    with pytest.raises(ConflictError, match="after the deadline is not taken"):
        answer(rt, finance[1]["id"], Approve(), approver_name="dana@finance", apply=False)
    assert rt.store.approvals.get(finance[1]["id"]).status.value == "expired"
    # a hold placed while the clock ran stops it: a late answer is taken
    third = start(rt, churn("late-2", account="ACC-10006")).decision_id
    request = pending(rt, third)["finance"]
    hold = rt.approvals.hold(third, until=utcnow() + timedelta(hours=1), reason="check",
                             actor="ops")
    with rt.store.engine.begin() as conn:  # held ten minutes ago; the deadline passed since
        conn.execute(update(holds).where(holds.c.id == hold.id)
                     .values(created_at=utcnow() - timedelta(minutes=10)))
        conn.execute(update(t.approvals).where(t.approvals.c.id == request["id"]).values(
            deadline=utcnow() - timedelta(minutes=1)))
    sla_sweep(rt, utcnow())
    answer(rt, request["id"], Approve(), approver_name="dana@finance", apply=False)
    assert rt.store.approvals.get(request["id"]).status.value == "approved"


# ---------------------------------------------------------------------- four eyes


def test_four_eyes_the_editor_proposes_and_another_approver_approves(rt: Runtime) -> None:
    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"four_eyes": True})
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    proposed = answer(rt, finance["id"], Edit(arguments={"goodwill_credit": {"amount": 150}}),
                      approver_name="dana@finance")
    assert proposed.status == "proposed"
    with pytest.raises(PermissionDenied, match="four eyes"):
        answer(rt, finance["id"], Approve(), approver_name="dana@finance")
    proposal = rt.approvals.proposal(finance["id"])
    assert proposal is not None
    rt.approvals.answer(finance["id"], Approve(), by=approver(rt, "omar@finance"),
                        proposal_hash=proposal["hash"])
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales")
    (credit,) = rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 150
    refusals = [e for e in rt.store.ledger.entries(decision) if e.event == "approval.refused"]
    assert [(e.actor, e.body["reason"], e.body["channel"]) for e in refusals] == [
        ("dana@finance", "four_eyes", "cli")]


def test_four_eyes_a_change_asked_for_two_versions_ago_still_needs_another_approver(
        rt: Runtime) -> None:
    # Found in a black-box trial: dana revised v1 ("make the credit 250"), omar revised
    # v2 for another reason, and dana then approved v3 alone, 250 and all: four-eyes knew
    # only who asked for the current version. Whoever asked for any change a version
    # carries is its requester.
    from decisionops.agent.models import Revise

    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={
        "four_eyes": True, "approvers": ["dana@finance", "omar@finance", "zoe@finance"]})
    decision = start(rt, churn()).decision_id
    for who, credit in (("dana@finance", 150), ("omar@finance", 120)):
        requests = pending(rt, decision)
        # sales approves first: the revise would withdraw its request (nothing to answer)
        answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
        answer(rt, requests["finance"]["id"],
               Revise(feedback=f"{who} asks for a credit of {credit}"), approver_name=who)
        rt.run_once()
    finance = pending(rt, decision)["finance"]
    assert finance["plan_version"] == 3
    for who in ("dana@finance", "omar@finance"):
        with pytest.raises(PermissionDenied, match="a change it carries"):
            rt.approvals.answer(finance["id"], Approve(), by=approver(rt, who))
    answer(rt, finance["id"], Approve(), approver_name="zoe@finance")


def test_four_eyes_an_approve_binds_to_the_proposal_its_approver_saw(rt: Runtime) -> None:
    """Under four-eyes an approve approves the standing edit proposal: it names the
    proposal it saw (``proposal_hash``), so a proposal made or replaced since (another
    approver's edit) is not approved by someone who never saw it."""
    from decisionops.agent.errors import ConflictError

    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={
        "four_eyes": True, "approvers": ["dana@finance", "omar@finance", "zoe@finance"]})
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    answer(rt, finance["id"], Edit(arguments={"goodwill_credit": {"amount": 100}}),
           approver_name="dana@finance")
    seen = rt.approvals.proposal(finance["id"])
    assert seen is not None and seen["proposer"] == "dana@finance"
    omar = approver(rt, "omar@finance")
    def refusals() -> list[str]:
        return [e.body["reason"] for e in rt.store.ledger.entries(decision)
                if e.event == "approval.refused"]

    assert refusals() == []
    # An approve that names no proposal is refused (it would approve one unseen).
    with pytest.raises(ConflictError, match="dana@finance proposed an edit") as refused:
        rt.approvals.answer(finance["id"], Approve(), by=omar)
    assert refused.value.details["field"] == "proposal_hash"
    assert seen["hash"] in refused.value.message
    # named as every refusal about the proposal is; the change as it was written (a
    # whole number, not the 100.0 the tool's float field stored)
    assert refused.value.message.startswith("proposal_hash: dana@finance proposed")
    assert "(goodwill_credit.amount 200 → 100)" in refused.value.message
    # Another approver replaces the proposal after omar read dana's.
    answer(rt, finance["id"], Edit(arguments={"goodwill_credit": {"amount": 480}}),
           approver_name="zoe@finance")
    with pytest.raises(ConflictError, match=r"proposal_hash: .* zoe@finance") as stale:
        rt.approvals.answer(finance["id"], Approve(comment="ok with 100"), by=omar,
                            proposal_hash=seen["hash"])
    assert stale.value.details["field"] == "proposal_hash"
    assert rt.store.approvals.get(finance["id"]).status == "pending"
    assert refusals() == ["proposal_pending", "stale_proposal"]
    # Approving the proposal omar sees now approves exactly that.
    now = rt.approvals.proposal(finance["id"])
    assert now is not None and now["hash"] != seen["hash"]
    recorded = rt.approvals.answer(finance["id"], Approve(), by=omar, proposal_hash=now["hash"])
    assert recorded.status == "edited"
    answer(rt, pending(rt, decision)["sales"]["id"], Approve(), approver_name="raj@sales")
    (credit,) = rt.enterprise.effects("finance.issue_credit")
    assert credit.arguments["amount"] == 480


def test_an_edit_that_changes_nothing_is_refused_not_recorded_as_an_edit(rt: Runtime) -> None:
    """An edit demotes earned autonomy and is shown as the approver's change: one that
    changes no argument (the proposed values sent back) is refused, naming what to do."""
    from decisionops.agent.errors import InvalidInputError

    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    (step,) = finance["request"]["steps"]
    for same in ({}, {step["id"]: {"amount": step["arguments"]["amount"]}}):
        with pytest.raises(InvalidInputError, match="changes no argument") as refused:
            rt.approvals.answer(finance["id"], Edit(arguments=same),
                                by=approver(rt, "dana@finance"))
        assert refused.value.field == "arguments"
    assert rt.store.approvals.get(finance["id"]).status == "pending"


def test_an_answer_that_loses_the_race_at_the_write_is_refused_as_a_replay(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two approvers answer at once: the one whose early read saw the request pending,
    but whose write found it answered, is told the same as one who read it answered."""
    from decisionops.agent.errors import ConflictError

    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    stale = rt.store.approvals.get(finance["id"])
    answer(rt, finance["id"], Approve(), approver_name="omar@finance", apply=False)
    get = rt.store.approvals.get
    reads = iter([stale])  # the early read, before omar's answer landed
    monkeypatch.setattr(rt.store.approvals, "get", lambda a: next(reads, None) or get(a))
    with pytest.raises(ConflictError, match=r"already answered .*by omar@finance") as lost:
        rt.approvals.answer(finance["id"], Reject(reason="no"),
                            by=approver(rt, "dana@finance"))
    assert lost.value.details["reason"] == "replay"
    assert rt.store.approvals.get(finance["id"]).status == "approved"


def test_four_eyes_is_judged_on_the_proposal_actually_approved(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proposal that lands while its own proposer's approve is being checked (the two
    requests raced) is not approved by that proposer: four-eyes is decided on the proposal
    the answer records, in the answer's transaction, not on an earlier read."""
    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"four_eyes": True})
    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    answer(rt, finance["id"], Edit(arguments={"goodwill_credit": {"amount": 150}}),
           approver_name="dana@finance")
    # The race: the approve's early look saw no proposal yet.
    monkeypatch.setattr(rt.store.approvals, "proposers", lambda *a, **k: set())
    with pytest.raises(PermissionDenied, match="four eyes"):
        answer(rt, finance["id"], Approve(), approver_name="dana@finance")
    assert rt.store.approvals.get(finance["id"]).status == "pending"


def test_a_request_whose_function_left_the_policies_expires_as_rejected(rt: Runtime) -> None:
    """A function removed from the policies while its request waits: nobody can answer
    it, the SLA sweep neither fails nor reminds anyone, and at its deadline it expires
    as rejected (fail safe)."""
    decision = start(rt, churn()).decision_id
    requests = pending(rt, decision)
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    sla_hours = rt.policies.functions["finance"].sla_hours
    del rt.policies.functions["finance"]
    assert sla_sweep(rt, utcnow() + timedelta(hours=sla_hours * 0.95))["escalated"] == 0
    assert sla_sweep(rt, utcnow() + timedelta(hours=sla_hours + 1))["expired"] == 1
    rt.run_once()
    assert rt.store.approvals.get(requests["finance"]["id"]).status == "expired"
    assert rt.store.decisions.get(decision).status == "completed"
    assert rt.enterprise.effects("finance.issue_credit") == []


def test_a_replayed_route_keeps_the_routing_it_stored(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """route crashed after storing its requests; by the time it runs again, policy would
    auto-approve finance's part. The replay keeps what was stored (finance asks its
    approvers), so finance's step never goes ahead on an auto-approval nobody recorded."""
    import decisionops.graphs.nodes.route as route_node

    def crash(point: str) -> None:
        if point == "after_route":
            raise RuntimeError("crashed after route")
    monkeypatch.setattr(route_node, "crash_point", crash)
    rt.ingest([churn()], source="test")
    rt.triage_pending()
    with pytest.raises(RuntimeError, match="crashed after route"):
        start_decisions(rt)
    monkeypatch.undo()
    (decision,) = [d.id for d in rt.store.decisions.list()]
    finance = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = finance.model_copy(update={
        "auto_approve": AutoApprove(max_risk=Risk.HIGH)})
    with rt.store.transaction() as conn:  # the crashed worker's lease has lapsed
        conn.execute(update(t.decisions).values(lease_until=utcnow() - timedelta(seconds=1)))

    rt.run_once()
    requests = pending(rt, decision)
    assert set(requests) == {"sales", "finance"}
    answer(rt, requests["sales"]["id"], Approve(), approver_name="raj@sales")
    assert rt.store.decisions.get(decision).status == "awaiting_approval"  # finance asked
    assert rt.enterprise.effects("finance.issue_credit") == []
    answer(rt, requests["finance"]["id"], Approve(), approver_name="dana@finance")
    assert rt.store.decisions.get(decision).status == "completed"
    assert len(rt.enterprise.effects("finance.issue_credit")) == 1


def test_a_policy_approver_whose_user_is_registered_for_another_function_is_told_both_must_name_it(
        rt: Runtime) -> None:
    # Found in a black-box trial: moved from finance's approver list to sales', zoe was
    # told "zoe@finance approves finance, not sales", as if the policy still said so.
    from decisionops.agent.approvals import Approver

    policy = rt.policies.functions["sales"]
    rt.policies.functions["sales"] = policy.model_copy(update={
        "approvers": [*policy.approvers, "zoe@finance"]})
    decision = start(rt, churn()).decision_id
    zoe = Approver(name="zoe@finance", role="approver", functions=("finance",), channel="api")
    with pytest.raises(PermissionDenied, match="the policy lists them for sales, but their "
                                               "user is registered for finance"):
        rt.approvals.answer(pending(rt, decision)["sales"]["id"], Approve(), by=zoe)


def test_expiry_never_approves_a_step_only_a_person_may_approve(rt: Runtime) -> None:
    # Found in a black-box trial: with on_timeout: approve, a hand plan's credit to
    # another account than the prediction's (flagged "its approvers decide") was
    # approved by the SLA's expiry and ran.
    from decisionops.agent.models import Prediction
    from decisionops.agent.prediction_queue import QueueUser

    policy = rt.policies.functions["finance"]
    rt.policies.functions["finance"] = policy.model_copy(update={"on_timeout": "approve"})
    rt.ingest([Prediction(id="f-1", model="m", kind="fraud", entity_type="account",
                          entity_id="ACC-10031", score=0.97, value_at_stake=12_000,
                          observed_at="2026-11-02T09:00:00Z")], source="test")
    rt.triage_pending()
    rt.queue.plan_by_hand("f-1", """
- {id: credit, function: finance, tool: finance.issue_credit, risk: low,
   arguments: {account_id: ACC-10045, amount: 50, currency: EUR, reason: goodwill}}
""", by=QueueUser("olga@ops", "operator", "test"))
    (started,) = start_decisions(rt)
    finance = pending(rt, started.decision_id)["finance"]
    later = utcnow() + timedelta(hours=policy.sla_hours + 1)
    assert sla_sweep(rt, later)["expired"] == 1
    rt.run_once()
    row = rt.store.approvals.get(finance["id"])
    assert row.status == "expired" and row.answer["type"] == "reject", row.answer
    assert "not approved on expiry: step credit acts on account_id=ACC-10045" in \
        row.answer["reason"]
    assert rt.enterprise.effects("finance.issue_credit") == []


def test_four_eyes_with_approval_on_expiry_is_refused_at_load(tmp_path: Path) -> None:
    from decisionops.agent.errors import ConfigError
    from decisionops.agent.policy import load_policies

    path = tmp_path / "functions.yaml"
    path.write_text("functions:\n  finance:\n    approvers: [a, b]\n"
                    "    tools: [finance.issue_credit]\n    four_eyes: true\n"
                    "    on_timeout: approve\n")
    with pytest.raises(ConfigError, match="four_eyes: true needs on_timeout: reject"):
        load_policies(path)


def test_a_hold_stops_the_sla_clock_and_its_release_gives_the_time_back(rt: Runtime) -> None:
    # Found in a black-box trial: a held decision's requests expired the moment its hold
    # was released, their SLA having run on during the hold; approvers had no window.
    from decisionops.agent.store._service_tables import holds

    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    row = rt.store.approvals.get(finance["id"])
    span = row.deadline - row.requested_at
    back = timedelta(hours=3) + span  # requested long ago: its deadline has passed
    hold = rt.approvals.hold(decision, until=utcnow() + timedelta(days=1), reason="checking",
                             actor="ops")
    with rt.store.engine.begin() as conn:
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            requested_at=row.requested_at - back, deadline=row.deadline - back))
        conn.execute(update(holds).where(holds.c.id == hold.id)
                     .values(created_at=row.requested_at - back))
    assert sla_sweep(rt, utcnow())["expired"] == 0  # held: its clock stands still
    rt.approvals.release(decision, actor="ops")
    moved = rt.store.approvals.get(row.id)
    assert moved.deadline > utcnow() + span * 0.9  # the time it had left, given back
    assert sla_sweep(rt, utcnow())["expired"] == 0
    sla_sweep(rt, moved.deadline + timedelta(seconds=1))
    assert rt.store.approvals.get(row.id).status == "expired"


def test_overlapping_holds_give_back_the_time_the_clock_stood_once(rt: Runtime) -> None:
    """(trial 27: a function hold, then an entity hold placed before the first was
    released, moved a request's deadline on by both spans: the overlap twice.) The
    clock stands while any covering hold stands; when the last one goes, the deadline
    moves on by the time from the first one's start, once."""
    from decisionops.agent.store._service_tables import holds

    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    row = rt.store.approvals.get(finance["id"])
    entity = rt.store.decisions.get(decision).entity_id
    first = rt.approvals.hold("finance", until=utcnow() + timedelta(days=1), reason="close",
                              actor="ops")
    second = rt.approvals.hold(entity, until=utcnow() + timedelta(days=1), reason="check",
                               actor="ops")
    now = utcnow()
    with rt.store.engine.begin() as conn:  # first: 50 min ago; second: 20 min ago
        conn.execute(update(holds).where(holds.c.id == first.id)
                     .values(created_at=now - timedelta(minutes=50)))
        conn.execute(update(holds).where(holds.c.id == second.id)
                     .values(created_at=now - timedelta(minutes=20)))
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            requested_at=now - timedelta(minutes=60)))
    rt.approvals.release("finance", actor="ops")  # the entity hold still stops the clock
    assert rt.store.approvals.get(row.id).deadline == row.deadline
    rt.approvals.release(entity, actor="ops")
    moved = rt.store.approvals.get(row.id).deadline - row.deadline
    assert timedelta(minutes=50) <= moved < timedelta(minutes=51), moved


def test_a_hold_that_ends_at_its_until_gives_the_time_back_too(rt: Runtime) -> None:
    """(trial 28 HIGH: a hold that ran out by its --until did not move the deadline on,
    and an on_timeout: approve request expired approved, and ran, at its un-held time.)
    A hold that lapses is released by the clock at its until: the time it stopped the
    clock is given back as a release gives it, before any sweep or answer looks."""
    from decisionops.agent.store._service_tables import holds

    decision = start(rt, churn()).decision_id
    finance = pending(rt, decision)["finance"]
    row = rt.store.approvals.get(finance["id"])
    entity = rt.store.decisions.get(decision).entity_id
    hold = rt.approvals.hold(entity, until=utcnow() + timedelta(days=1), reason="check",
                             actor="ops")
    now = utcnow()
    span = row.deadline - row.requested_at
    requested = now - span - timedelta(minutes=30)  # due 30 minutes ago, un-held
    with rt.store.engine.begin() as conn:  # held for 50 minutes, ended 5 minutes ago
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            requested_at=requested, deadline=requested + span))
        conn.execute(update(holds).where(holds.c.id == hold.id).values(
            created_at=requested + timedelta(minutes=1),
            until=requested + timedelta(minutes=51)))
    assert sla_sweep(rt, utcnow())["expired"] == 0  # 50 minutes given back: 20 left
    moved = rt.store.approvals.get(row.id)
    assert moved.status == "pending"
    assert moved.deadline - (requested + span) == timedelta(minutes=50)
    (lapsed,) = [e for e in rt.store.ledger.entries() if e.event == "hold.lapsed"]
    assert lapsed.body["hold_id"] == hold.id
    assert rt.store.holds.list(active_only=True) == []
    sla_sweep(rt, moved.deadline + timedelta(seconds=1))
    assert rt.store.approvals.get(row.id).status == "expired"


def test_a_hold_is_released_by_the_number_holds_list_shows(rt: Runtime) -> None:
    """(trial 14: `holds release 1` said there was no active hold on '1', where
    `holds add` had printed `hold #1` and `holds list` shows the id)"""
    decision = start(rt, churn()).decision_id
    hold = rt.approvals.hold(decision, until=utcnow() + timedelta(hours=1), reason="check",
                             actor="ops")
    other = rt.approvals.hold("finance", until=utcnow() + timedelta(hours=1), reason="close",
                              actor="ops")
    assert rt.approvals.release(f"#{hold.id}", actor="ops") == [hold.id]
    # A bare number is a target (an entity id may be all digits), not a hold's number.
    with pytest.raises(NotFoundError):
        rt.approvals.release(str(other.id), actor="ops")
    assert rt.approvals.release(f"#{other.id}", actor="ops") == [other.id]
    assert rt.store.holds.list(active_only=True) == []
    released = [e.body for e in rt.store.ledger.entries() if e.event == "hold.released"]
    assert [b["target"] for b in released] == [decision, "finance"]  # what was held
    with pytest.raises(NotFoundError):
        rt.approvals.release(f"#{hold.id}", actor="ops")  # released already


def test_a_hold_on_a_finished_decision_is_refused(rt: Runtime) -> None:
    """(trial 14: it was placed and printed as if it held something)"""
    decision = start(rt, churn()).decision_id
    for function, request in pending(rt, decision).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])
    assert rt.store.decisions.get(decision).status == "completed"
    with pytest.raises(InvalidInputError) as refused:
        rt.approvals.hold(decision, until=utcnow() + timedelta(hours=1), reason="late",
                          actor="ops")
    assert refused.value.details["field"] == "target"
    assert "is completed: a hold on it would stop nothing" in refused.value.message
    assert rt.store.holds.list(active_only=False) == []


def test_a_decision_in_which_nothing_ran_for_a_rejection_ends_rejected(tmp_path: Path) -> None:
    """Sales rejects its offer; finance approves a credit that depends on it, so it is
    skipped too: nothing ran, and the decision ends rejected, not completed as one that
    did its work (trial 18)."""
    folder = tmp_path / "playbooks"
    folder.mkdir()
    account = {"account_id": "{{ prediction.entity_id }}"}
    (folder / "churn.yaml").write_text(yaml.safe_dump({
        "name": "churn-retention", "kind": "churn", "version": 1,
        "trigger": {"min_score": 0.5, "min_expected_value": 100, "cooldown_days": 0},
        "steps": [
            {"id": "offer", "function": "sales", "tool": "crm.create_retention_offer",
             "risk": "medium", "arguments": {**account, "offer_type": "discount",
                                             "discount_pct": 10, "duration_months": 3}},
            {"id": "credit", "function": "finance", "tool": "finance.issue_credit",
             "risk": "medium", "depends_on": ["offer"],
             "arguments": {**account, "amount": 400, "currency": "EUR", "reason": "r"}}]}))
    settings = Settings(home=tmp_path / "home", playbooks_dir=folder)
    with Runtime(settings, actor="test-worker") as rt:
        approver(rt, "dana@finance")
        approver(rt, "raj@sales")
        decision = start(rt, churn("c-r", account="ACC-10004")).decision_id
        asked = pending(rt, decision)
        answer(rt, asked["finance"]["id"], Approve(), approver_name="dana@finance")
        answer(rt, asked["sales"]["id"], Reject(reason="on a deal already"),
               approver_name="raj@sales")
        row = rt.store.decisions.get(decision)
        assert row.status == "rejected", (row.status, row.error)
        assert rt.enterprise.effects() == []
        assert set(steps(rt, decision).values()) == {"skipped"}
