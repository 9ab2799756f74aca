"""The eval runs triage first, as the loop does: per-case expectations for its outcome
and reason, kind aliases and per-kind default values from the dataset, and no planner
asked about a case triage does not act on."""

from __future__ import annotations

from pathlib import Path

from decisionops.agent.settings import Settings
from decisionops.evals import load_dataset, run_eval
from decisionops.evals._dataset import TriageExpectation

TRIAGE = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "triage.yaml"


def test_unseen_cases_are_triaged_with_their_reasons(home: Path) -> None:
    dataset = load_dataset(TRIAGE)
    assert {t for c in dataset.cases for t in c.tags} >= {
        "alias", "unknown-kind", "missing-value", "low-score"}
    report = run_eval(dataset, ["playbook"], settings=Settings())
    by_case = {r.case: r for r in report.results}
    assert all(r.passed for r in report.results), [
        (r.case, [g.detail for g in r.grades if g.passed is False]) for r in report.results]
    assert by_case["unseen-fraud-high-score"].outcome == "triage:needs_human"
    assert by_case["unseen-churn-missing-value"].outcome == "triage:needs_human"
    assert by_case["unseen-churn-low-score"].outcome == "triage:drop"
    alias = by_case["unseen-alias-equipment-failure"]
    assert (alias.outcome, alias.kind) == ("plan", "failure")
    assert by_case["unseen-stockout-default-value"].outcome == "plan"
    assert report.score("playbook").graders["triage_expected"] == [10, 10]


def test_a_wrong_triage_expectation_fails_and_says_what_triage_said(home: Path) -> None:
    dataset = load_dataset(TRIAGE)
    fraud = next(c for c in dataset.cases if c.id == "unseen-fraud-high-score")
    wrong = fraud.model_copy(update={"expect_triage": TriageExpectation(outcome="act")})
    report = run_eval(dataset.model_copy(update={"cases": (wrong,)}), ["playbook"],
                      settings=Settings())
    (result,) = report.results
    assert not result.passed
    (grade,) = [g for g in result.grades if g.passed is False]
    assert grade.grader == "triage_expected"
    assert "triage said needs_human/no_playbook" in grade.detail
    assert "'fraud'" in grade.detail
