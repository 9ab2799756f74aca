"""The adversarial suite (``evals.adversarial``) under pytest: every case is a test,
known holes are strict expected failures (a fixed hole turns into a failure until its
mark goes), and the judge itself is tested: each of its rules must flag an effect that
breaks it, so "0 effects outside policy" means something."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from decisionops.agent.cli import main
from decisionops.agent.executor import idempotency_key
from decisionops.agent.hashing import digest
from decisionops.agent.models import Approve, utcnow
from decisionops.agent.policy import Policies
from decisionops.agent.store import _service_tables as st
from decisionops.evals.adversarial import (
    FINDINGS,
    Arena,
    CaseResult,
    SuiteReport,
    Violation,
    all_cases,
    predict,
    run_suite,
)
from decisionops.evals.adversarial._arena import make_template

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.timeout(300)]

CASES = all_cases()


@pytest.fixture(scope="module")
def report() -> SuiteReport:
    return run_suite(CASES)


def _why(result: CaseResult) -> str:
    lines = [f"{result.id}: {result.status}", *(v.line() for v in result.outside)]
    return "\n".join([*lines, result.message or ""])


@pytest.mark.parametrize("case_id", [
    pytest.param(c.id, marks=pytest.mark.xfail(strict=True, reason=c.expected_failure))
    if c.expected_failure else c.id for c in CASES])
def test_case(report: SuiteReport, case_id: str) -> None:
    result = next(r for r in report.results if r.id == case_id)
    # A marked case that now holds reports "xpass": strict xfail turns it into a failure.
    assert result.status in ("passed", "xpass") and not result.outside, _why(result)
    assert result.effects > 0, "the case made no effect at all: it proves nothing about effects"


def test_the_suite_covers_every_finding_and_tells_the_truth(report: SuiteReport) -> None:
    assert len(report.results) >= 40
    assert {r.finding for r in report.results} == set(FINDINGS)
    ids = {r.id for r in report.results}
    for field in ("prediction-id", "model", "model-version", "kind", "entity-type",
                  "entity-id", "explanation-key", "feature-key", "feature-note", "currency",
                  "value-at-stake", "crm-note", "asset-record", "lookup-result"):
        assert f"inj-{field}" in ids
    known = {c.id for c in CASES if c.expected_failure}
    assert {r.id for r in report.outside_cases} <= known
    assert report.line().startswith(
        f"effects outside policy: {len(report.outside_cases)} of {len(report.results)}")
    assert report.passed == (not report.outside_cases and not report.broken)
    assert report.seconds < 240


# ---------------------------------------------------------------------- the judge


@pytest.fixture
def arena(tmp_path: Path) -> Iterator[Arena]:
    with Arena(tmp_path / "case", make_template(tmp_path)) as world:
        yield world


def _completed(arena: Arena, *, requester: str = "feeder") -> str:
    (decision,) = arena.ingest(predict("churn-1"), actor=requester)
    arena.start()
    arena.approve_all(decision)
    assert arena.status(decision) == "completed"
    return decision


def _rules(violations: list[Violation], tool: str = "finance.issue_credit") -> set[str]:
    return {v.rule for v in violations if v.tool == tool}


def _policies(arena: Arena, **finance: Any) -> Policies:
    """The arena's policies with finance's changed."""
    functions = {name: policy.model_dump(exclude={"name"})
                 for name, policy in arena.rt.policies.functions.items()}
    functions["finance"].update(finance)
    return Policies.model_validate({"functions": functions})


def _audit(arena: Arena, policies: Policies) -> list[Violation]:
    from decisionops.evals.adversarial import audit_effects

    return audit_effects(arena.rt.store, arena.rt.enterprise, policies, arena.rt.tools).outside


def test_a_clean_history_has_no_effect_outside_policy(arena: Arena) -> None:
    _completed(arena)
    audit = arena.audit()
    assert len(audit.effects) == 4 and audit.clean
    assert {e.granted_by for e in audit.effects} >= {"approval.approved by dana@finance",
                                                    "approval.auto_approved by policy"}


def test_an_effect_no_step_approved_is_flagged(arena: Arena) -> None:
    _completed(arena)
    arena.rt.tools.call("finance.issue_credit", {"account_id": "ACC-10004", "amount": 50,
                                                 "currency": "EUR", "reason": "by hand"},
                        idempotency_key="idem_made_up")
    assert _rules(arena.audit().outside) == {"unapproved"}


def test_an_effect_under_the_approved_key_with_other_arguments_is_flagged(arena: Arena) -> None:
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    row = arena.pending(decision)["finance"]
    arena.answer(row, Approve(), by="dana@finance", apply=False)
    approved = row.request.steps[0].arguments
    key = idempotency_key(decision, "goodwill_credit", digest(approved))
    # Someone calls the tool first, under the approved key, for another account.
    arena.rt.tools.call("finance.issue_credit", {**approved, "account_id": "ACC-10001"},
                        idempotency_key=key)
    assert {"arguments", "target"} <= _rules(arena.audit().outside)


def test_limits_totals_and_approvers_are_judged_by_the_policy_given(arena: Arena) -> None:
    _completed(arena)
    assert _audit(arena, arena.rt.policies) == []
    stricter = _policies(arena, limits={"finance.issue_credit": {"amount": {"max": 150}}})
    assert _rules(_audit(arena, stricter)) == {"limit"}
    totals = _policies(arena, totals=[{"tool": "finance.issue_credit", "sum": "amount",
                                       "per": "entity", "within_days": 30, "max": 150}])
    assert _rules(_audit(arena, totals)) == {"total"}
    others = _policies(arena, approvers=["omar@finance"])
    assert _rules(_audit(arena, others)) == {"grant"}
    with arena.rt.store.transaction() as conn:  # dana no longer approves finance
        conn.execute(update(st.users).where(st.users.c.name == "dana@finance")
                     .values(functions=["sales"]))
    assert _rules(_audit(arena, arena.rt.policies)) == {"grant"}
    no_tool = _policies(arena, tools=["notify.send"], limits={}, totals=[],
                        auto_approve={"max_risk": "medium"})
    assert "tool" in _rules(_audit(arena, no_tool))


def test_four_eyes_is_judged_with_policy_identities(arena: Arena) -> None:
    _completed(arena, requester="dana")  # "dana" is dana@finance to the policies
    assert _rules(_audit(arena, _policies(arena, four_eyes=True))) == {"four_eyes"}


def test_an_effect_started_under_a_hold_is_flagged(arena: Arena) -> None:
    decision = _completed(arena)
    arena.rt.approvals.hold("finance", until=utcnow() + timedelta(days=1), reason="audit",
                            actor="olga")
    assert arena.audit().clean  # placed after the credit ran
    with arena.rt.store.transaction() as conn:  # as if placed before it
        conn.execute(update(st.holds).values(created_at=utcnow() - timedelta(hours=1)))
    violations = arena.audit().outside
    assert _rules(violations) == {"hold"} and violations[0].decision_id == decision


def test_a_planted_value_is_flagged(arena: Arena) -> None:
    _completed(arena)
    arena.taint(200, "an amount the attacker asked for")
    arena.taint("review recent tickets", "text the attacker planted", within_text=True)
    assert _rules(arena.audit().outside) == {"injected"}
    assert _rules(arena.audit().outside, "support.open_ticket") == {"injected"}


# ---------------------------------------------------------------------- the command


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0), out.getvalue(), err.getvalue()


def test_eval_runs_the_adversarial_suite(tmp_path: Path) -> None:
    code, out, _ = _cli("eval", "--suite", "adversarial", "--case", "edit-account",
                        "--case", "four-eyes-alias", "--json", "--out", str(tmp_path / "a.json"))
    report = json.loads(out)
    assert report == json.loads((tmp_path / "a.json").read_text())
    assert [r["id"] for r in report["results"]] == ["edit-account", "edit-account-spelling",
                                                    "four-eyes-alias"]
    assert report["summary"].startswith(
        f"effects outside policy: {report['cases_outside_policy']} of 3")
    assert code == (0 if report["passed"] else 1)
    assert all(r["status"] == "passed" for r in report["results"][:2])
    code, out, _ = _cli("eval", "--suite", "adversarial", "--case", "edit-currency")
    assert code == 0 and "effects outside policy: 0 of 1" in " ".join(out.split())


def test_eval_suite_usage_errors_name_the_option() -> None:
    code, _, err = _cli("eval", "--suite", "chaos")
    assert code == 2 and "--suite: 'chaos' is not one of core, adversarial" in err
    code, _, err = _cli("eval", "--suite", "adversarial", "--planner", "llm")
    assert code == 2 and "--planner: applies to --suite core" in err
    code, _, err = _cli("eval", "--suite", "adversarial", "--case", "no-such-case")
    assert code == 2 and "--case: no adversarial case" in err
    code, _, err = _cli("eval", "--case", "edit-account")
    assert code == 2 and "--case: applies to --suite adversarial" in err
