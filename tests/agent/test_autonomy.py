"""Earned autonomy on simulated histories: finance's goodwill credit (churn playbook, a
credit of 200 — above finance's static auto-approve limit of 100, within its hard limit
of 500) approved again and again, through the approval service as on every channel.
The policy here promotes after 3 approvals in a row by 2 approvers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from decisionops.agent.approvals import Approver
from decisionops.agent.autonomy import Outcomes, class_key, outcomes_worse, run_of_approvals
from decisionops.agent.errors import InvalidInputError, PermissionDenied
from decisionops.agent.models import Approve, Edit, Reject
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import ledger
from decisionops.agent.store._outcomes import NewOutcome
from tests.graphs.conftest import churn, start
from tests.support import answer, approver, pending

CREDIT = "finance/churn-retention/goodwill_credit/finance.issue_credit[amount≤256]"


def _policies(tmp_path: Path, **autonomy: Any) -> Path:
    from importlib import resources

    data = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                          .read_text("utf-8"))
    if autonomy is not None:
        data["functions"]["finance"]["autonomy"] = {"after": 3, "approvers": 2, **autonomy}
    path = tmp_path / "functions.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path / "home", holdout_share=0,
                        functions_file=_policies(tmp_path), database_url=(
                            request.getfixturevalue("pg_url") if request.param == "postgres"
                            else None))
    with Runtime(settings, actor="test-worker") as runtime:
        runtime.enterprise.seed()
        for policy in runtime.policies.functions.values():
            for name in policy.approvers:
                approver(runtime, name)
        yield runtime


def _accounts(rt: Runtime) -> list[str]:
    return [a["account_id"] for a in rt.enterprise.rows("accounts")]


def _decide(rt: Runtime, n: int, start_at: int = 0) -> list[str]:
    """Start ``n`` churn decisions on distinct accounts; their decision ids."""
    accounts = _accounts(rt)
    out = []
    for i in range(start_at, start_at + n):
        result = start(rt, churn(f"p-{i}", account=accounts[i]))
        out.append(result.decision_id)
    return out


def _finance(rt: Runtime, decision_id: str) -> str | None:
    request = pending(rt, decision_id).get("finance")
    return request["id"] if request else None


def _approve_finance(rt: Runtime, decisions: list[str], people: list[str]) -> None:
    for decision_id, person in zip(decisions, people, strict=True):
        answer(rt, _finance(rt, decision_id), Approve(), approver_name=person)


def _state(rt: Runtime, key: str = CREDIT) -> str | None:
    found = rt.store.autonomy.get(key)
    return found.state if found else None


def _events(rt: Runtime, name: str) -> list[Any]:
    return [e for e in rt.store.ledger.search(event=name)]


def test_the_class_of_a_step_is_function_playbook_step_tool_and_bands() -> None:
    from decisionops.agent.models import Step
    step = Step(id="goodwill_credit", function="finance", tool="finance.issue_credit",
                arguments={"account_id": "ACC-1", "amount": 200, "currency": "EUR"})
    banded = {"amount"}  # what finance's policy bounds
    assert class_key("finance", "churn-retention", step, banded) == CREDIT
    bigger = step.model_copy(update={"arguments": {**step.arguments, "amount": 300}})
    assert class_key("finance", "churn-retention", bigger, banded).endswith("[amount≤512]")
    other = step.model_copy(update={"arguments": {**step.arguments, "account_id": "ACC-2"}})
    assert class_key("finance", "churn-retention", other, banded) == CREDIT  # not to whom
    assert class_key("finance", "churn-retention", step) == CREDIT.split("[")[0]
    assert class_key("finance", None, step, banded) is None


def test_a_run_of_approvals_counts_back_to_the_first_break() -> None:
    answers = [("approved", "a"), ("autonomy", "autonomy:f"), ("approved", "b"),
               ("edited", "a"), ("approved", "a")]
    assert run_of_approvals(answers) == (2, ["a", "b"], "edited")
    assert run_of_approvals([("approved", "a")] * 3) == (3, ["a"], None)


def test_outcomes_are_worse_only_when_the_test_says_so() -> None:
    assert outcomes_worse(Outcomes(0, 0), Outcomes(5, 10), 0.9)[0] is False
    assert outcomes_worse(Outcomes(8, 10), Outcomes(8, 10), 0.9)[0] is False
    worse, text = outcomes_worse(Outcomes(2, 20), Outcomes(16, 20), 0.9)
    assert worse and "2/20" in text and "16/20" in text
    assert outcomes_worse(Outcomes(4, 10), Outcomes(5, 10), 0.95)[0] is False  # noise


def test_a_clean_history_promotes_at_exactly_n_and_then_needs_no_person(rt: Runtime) -> None:
    decisions = _decide(rt, 4)
    _approve_finance(rt, decisions[:2], ["dana@finance", "omar@finance"])
    assert _state(rt) is None  # 2 of 3
    _approve_finance(rt, decisions[2:3], ["dana@finance"])
    assert _state(rt) == "promoted"
    (promoted,) = _events(rt, "autonomy.promoted")
    assert promoted.body["class"] == CREDIT
    assert promoted.body["evidence"]["run"] == 3
    assert sorted(promoted.body["evidence"]["approvers"]) == ["dana@finance", "omar@finance"]
    # The 4th was routed before the promotion: its request still waits for a person.
    assert _finance(rt, decisions[3]) is not None
    # A new decision: finance's part is approved by earned autonomy, the credit runs.
    (fresh,) = _decide(rt, 1, start_at=10)
    assert _finance(rt, fresh) is None
    (row,) = [a for a in rt.store.approvals.list(decision_id=fresh) if a.function == "finance"]
    assert row.status.value == "auto_approved" and row.approver == "autonomy:finance"
    assert CREDIT in row.answer["comment"] and "3 approvals in a row" in row.answer["comment"]
    answer(rt, pending(rt, fresh)["sales"]["id"], Approve(), approver_name="raj@sales")
    assert rt.store.decisions.get(fresh).status.value == "completed", rt.store.decisions.get(fresh).error
    credits = [e for e in rt.enterprise.effects() if e.tool == "finance.issue_credit"]
    assert len(credits) == 1
    assert ledger.verify(rt.store.engine).ok


def test_a_single_rubber_stamp_approver_never_promotes(rt: Runtime) -> None:
    decisions = _decide(rt, 5)
    _approve_finance(rt, decisions, ["dana@finance"] * 5)
    assert _state(rt) is None
    (row,) = [r for r in rt.approvals.autonomy.report("finance") if r["class"] == CREDIT]
    assert row["run"] == 5 and row["would"].startswith("5 approvals in a row, but by 1 approver")


def test_an_edit_breaks_the_run_and_the_count_starts_again(rt: Runtime) -> None:
    decisions = _decide(rt, 6)
    _approve_finance(rt, decisions[:2], ["dana@finance", "omar@finance"])
    answer(rt, _finance(rt, decisions[2]),
           Edit(arguments={"goodwill_credit": {"amount": 150}}), approver_name="omar@finance")
    _approve_finance(rt, decisions[3:5], ["dana@finance", "omar@finance"])
    assert _state(rt) is None  # 2 since the edit
    _approve_finance(rt, decisions[5:6], ["dana@finance"])
    assert _state(rt) == "promoted"


def test_the_first_rejection_demotes_with_its_evidence(rt: Runtime) -> None:
    decisions = _decide(rt, 4)
    _approve_finance(rt, decisions[:3], ["dana@finance", "omar@finance", "dana@finance"])
    assert _state(rt) == "promoted"
    answer(rt, _finance(rt, decisions[3]), Reject(reason="account in dispute"),
           approver_name="omar@finance")
    assert _state(rt) == "demoted"
    (demoted,) = _events(rt, "autonomy.demoted")
    assert "rejected by omar@finance" in demoted.body["reason"]
    assert demoted.body["evidence"]["broken_by"] == "rejected"
    (fresh,) = _decide(rt, 1, start_at=10)
    assert _finance(rt, fresh) is not None  # a person again
    # Promotion must be earned again from scratch: 3 more in a row.
    more = _decide(rt, 2, start_at=11)
    _approve_finance(rt, [fresh, *more[:1]], ["dana@finance", "omar@finance"])
    assert _state(rt) == "demoted"
    _approve_finance(rt, more[1:], ["omar@finance"])
    assert _state(rt) == "promoted"


def test_regressing_outcomes_demote_before_the_next_step_runs(rt: Runtime, tmp_path: Path
                                                               ) -> None:
    decisions = _decide(rt, 3)
    _approve_finance(rt, decisions, ["dana@finance", "omar@finance", "dana@finance"])
    for d in decisions:
        answer(rt, pending(rt, d)["sales"]["id"], Approve(), approver_name="raj@sales")
    assert _state(rt) == "promoted"
    # The control group (held out by triage) mostly stayed; the treated accounts churned.
    accounts = _accounts(rt)[20:32]
    control = rt.settings.model_copy(update={"holdout_share": 0.99})
    with Runtime(control, actor="control") as other:
        other.ingest([churn(f"c-{a}", account=a) for a in accounts], source="test")
        other.triage_pending()
    when = datetime(2026, 12, 1, tzinfo=UTC)
    subjects = rt.store.outcomes.unrecorded_subjects()
    outcomes = [NewOutcome(subject=s, label="retained" if s.arm == "control" else "churned",
                           value_realized=0.0, observed_at=when, source="test")
                for s in subjects if s.decision_id in decisions or s.arm == "control"]
    rt.store.outcomes.save_outcomes(outcomes, actor="test")
    (fresh,) = _decide(rt, 1, start_at=40)
    assert _finance(rt, fresh) is not None  # demoted at routing: a person decides
    assert _state(rt) == "demoted"
    (demoted,) = _events(rt, "autonomy.demoted")
    assert demoted.body["reason"].startswith("outcome regression")
    assert demoted.body["evidence"]["treated"] == {"successes": 0, "n": 3}
    held = len([s for s in subjects if s.arm == "control"])
    assert held >= 8
    assert demoted.body["evidence"]["control"] == {"successes": held, "n": held}


def test_a_step_the_playbook_would_not_propose_is_never_promoted(rt: Runtime) -> None:
    decisions = _decide(rt, 3)
    _approve_finance(rt, decisions, ["dana@finance", "omar@finance", "dana@finance"])
    policy = rt.policies.get("finance")
    from decisionops.agent.models import Step
    invented = Step(id="extra_credit", function="finance", tool="finance.issue_credit",
                    arguments={"account_id": "ACC-1", "amount": 200, "currency": "EUR"})
    assert rt.approvals.autonomy.covers(policy, "churn-retention", [invented],
                                        key_of=rt.approvals.target_of,
                                        used=rt.approvals.used(None)) is None
    over = Step(id="goodwill_credit", function="finance", tool="finance.issue_credit",
                arguments={"account_id": "ACC-1", "amount": 600, "currency": "EUR"})
    assert rt.approvals.autonomy.covers(policy, "churn-retention", [over],
                                        key_of=rt.approvals.target_of,
                                        used=rt.approvals.used(None)) is None


def test_a_person_revokes_and_reinstates_and_only_the_functions_people_may(rt: Runtime
                                                                           ) -> None:
    decisions = _decide(rt, 3)
    _approve_finance(rt, decisions, ["dana@finance", "omar@finance", "dana@finance"])
    with pytest.raises(PermissionDenied):
        rt.approvals.autonomy.revoke(CREDIT, by=approver(rt, "raj@sales"), reason="no")
    revoked = rt.approvals.autonomy.revoke(CREDIT, by=approver(rt, "omar@finance"),
                                           reason="audit season")
    assert revoked.state == "revoked" and revoked.reason == "audit season"
    with pytest.raises(InvalidInputError, match="not promoted"):
        rt.approvals.autonomy.revoke(CREDIT, by=approver(rt, "omar@finance"), reason="")
    # Approvals go on, but a revoked class is not promoted again by the record alone.
    more = _decide(rt, 3, start_at=10)
    assert _finance(rt, more[0]) is not None
    _approve_finance(rt, more, ["dana@finance", "omar@finance", "dana@finance"])
    assert _state(rt) == "revoked"
    rt.approvals.autonomy.reinstate(CREDIT, by=approver(rt, "dana@finance"), reason="done")
    assert _state(rt) == "promoted"
    assert [e.body["reason"] for e in _events(rt, "autonomy.reinstated")] == ["done"]


def test_a_function_that_did_not_opt_in_is_only_reported(tmp_path: Path) -> None:
    from importlib import resources
    bundled = resources.files("decisionops.agent") / "data" / "functions.yaml"
    settings = Settings(home=tmp_path / "home", holdout_share=0,
                        functions_file=Path(str(bundled)))
    with Runtime(settings, actor="t") as rt:
        rt.enterprise.seed()
        for policy in rt.policies.functions.values():
            for name in policy.approvers:
                approver(rt, name)
        decisions = _decide(rt, 3)
        _approve_finance(rt, decisions, ["dana@finance", "omar@finance", "dana@finance"])
        assert _state(rt) is None
        (row,) = [r for r in rt.approvals.autonomy.report("finance", after=3)
                  if r["class"] == CREDIT]
        assert row["opted_in"] is False and row["would"] == "promote"
        assert row["requests_per_week"] == 0.75


def test_the_record_is_rebuilt_from_the_answered_requests(rt: Runtime) -> None:
    decisions = _decide(rt, 5)
    _approve_finance(rt, decisions[:2], ["dana@finance", "omar@finance"])
    answer(rt, _finance(rt, decisions[2]),
           Edit(arguments={"goodwill_credit": {"amount": 150}}), approver_name="omar@finance")
    _approve_finance(rt, decisions[3:5], ["dana@finance", "omar@finance"])

    def record() -> list[tuple[Any, ...]]:
        return [(r["class"], r["run"], sorted(r["approvers"]), r["broken_by"], r["counts"])
                for r in rt.approvals.autonomy.report()]

    before = record()
    assert [r for r in before if r[0] == CREDIT] == [
        (CREDIT, 2, ["dana@finance", "omar@finance"], "edited", {"approved": 4, "edited": 1})]
    rt.store.autonomy.replace_answers([])  # a store from before earned autonomy
    assert rt.approvals.autonomy.report() == []
    assert rt.approvals.autonomy.rebuild() == sum(sum(r[4].values()) for r in before)
    assert record() == before


def test_who_may_see_which_classes_is_the_services_rule(rt: Runtime) -> None:
    """The record of a function's classes is shown to its approvers and to operators;
    every channel asks the service with the viewer, none filters on its own."""
    decisions = _decide(rt, 3)
    _approve_finance(rt, decisions, ["dana@finance", "omar@finance", "dana@finance"])
    autonomy = rt.approvals.autonomy
    finance, sales = approver(rt, "dana@finance"), approver(rt, "raj@sales")
    assert {r["function"] for r in autonomy.report(viewer=finance)} == {"finance"}
    assert autonomy.report(viewer=sales) == []
    with pytest.raises(PermissionDenied, match="finance"):
        autonomy.report("finance", viewer=sales)
    with pytest.raises(PermissionDenied, match="finance"):
        autonomy.dry_run("finance", viewer=sales)
    # A dry run for "my function" needs no name when the viewer approves exactly one.
    assert autonomy.dry_run(viewer=finance, after=3) == autonomy.dry_run("finance", after=3)
    rt.store.users.create("ops", role="operator", functions=[], actor="test")
    operator = Approver(name="ops", role="operator", functions=(), channel="api")
    assert autonomy.report(viewer=operator) == autonomy.report()
