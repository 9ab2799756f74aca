"""Each eval case goes on past the plan through the graph's own guard, target check
(against the reference enterprise) and routing: per-case expectations for where it ends
(``expect_outcome``) and who is asked (``expect_routing``), graded 0/1 with a message
that says what happened; the unseen ``e2e`` dataset passes for every planner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from decisionops.agent.settings import Settings
from decisionops.evals import load_dataset, run_eval
from decisionops.evals._dataset import OutcomeExpectation
from decisionops.evals._graders import grade_outcome, grade_routing
from decisionops.evals.authoring import write_scripts

ROOT = Path(__file__).resolve().parents[2] / "evals"
E2E = ROOT / "datasets" / "e2e.yaml"


def test_unseen_cases_end_where_the_graph_would_end_them(home: Path) -> None:
    dataset = load_dataset(E2E)
    assert {t for c in dataset.cases for t in c.tags} >= {
        "unknown-entity", "missing-field", "alias", "urgency", "low-score", "unknown-kind"}
    report = run_eval(dataset, ["playbook"], settings=Settings())
    assert all(r.passed for r in report.results), [
        (r.case, [g.detail for g in r.grades if g.passed is False]) for r in report.results]
    by_case = {r.case: r for r in report.results}
    unknown = by_case["e2e-unknown-account"]
    assert (unknown.outcome, unknown.end, unknown.routing) == ("plan", "needs_human", None)
    assert "unknown account 'ACC-40404'" in unknown.reason
    assert "unknown asset 'AST-PMP-9999'" in by_case["e2e-unknown-asset"].reason
    assert "unknown sku 'SKU-00404'" in by_case["e2e-unknown-sku"].reason
    # urgency changes who is asked: the urgent stock-out's expedited order needs a person
    assert by_case["e2e-alias-inventory-shortage"].routing == {"sales": "auto",
                                                               "supply_chain": "auto"}
    assert by_case["e2e-stockout-urgent"].routing == {"sales": "auto", "supply_chain": "ask"}
    assert by_case["e2e-churn-low-score"].end == "drop"
    assert by_case["e2e-unknown-kind"].end == "needs_human"
    score = report.score("playbook")
    assert score.graders["end_to_end_expected"] == [12, 12]
    assert score.graders["routing_expected"] == [6, 6]
    assert report.to_json()["results"][0]["end"] == "needs_human"


@pytest.mark.parametrize("planner", ["llm", "hybrid"])
def test_llm_planners_play_the_recorded_e2e_scripts(home: Path, planner: str) -> None:
    report = run_eval(load_dataset(E2E), [planner], settings=Settings())
    assert report.mode == "scripted"
    assert all(r.passed for r in report.results), [
        (r.case, r.error, [g.detail for g in r.grades if g.passed is False])
        for r in report.results]


def test_a_wrong_outcome_or_routing_fails_saying_what_happened(home: Path) -> None:
    dataset = load_dataset(E2E)
    unknown = next(c for c in dataset.cases if c.id == "e2e-unknown-account")
    shortage = next(c for c in dataset.cases if c.id == "e2e-alias-inventory-shortage")
    wrong = [unknown.model_copy(update={"expect_outcome": OutcomeExpectation(outcome="routed")}),
             shortage.model_copy(update={"expect_routing": {"supply_chain": "ask",
                                                            "finance": "auto"}})]
    report = run_eval(dataset.model_copy(update={"cases": tuple(wrong)}), ["playbook"],
                      settings=Settings())
    first, second = report.results
    assert not first.passed and not second.passed
    (e2e,) = [g for g in first.grades if g.grader == "end_to_end_expected"]
    assert e2e.passed is False
    assert "ended needs_human (check: unknown account 'ACC-40404'" in e2e.detail
    assert e2e.detail.endswith("expected routed")
    (routing,) = [g for g in second.grades if g.grader == "routing_expected"]
    assert routing.detail == ("finance: no step, expected auto; "
                              "supply_chain: auto, expected ask")


def test_graders_do_not_apply_without_expectations() -> None:
    case = load_dataset(E2E).cases[0].model_copy(update={"expect_outcome": None,
                                                         "expect_routing": {}})
    assert grade_outcome(case, "routed", "").passed is None
    assert grade_routing(case, {"sales": "ask"}).passed is None
    reason = case.model_copy(update={"expect_outcome": OutcomeExpectation(
        outcome="needs_human", reason="acc-40404")})
    assert grade_outcome(reason, "needs_human", "unknown account 'ACC-40404'").passed


@pytest.mark.parametrize("name", ["e2e", "triage"])
def test_the_recorded_scripts_are_what_authoring_writes(tmp_path: Path, name: str) -> None:
    # Found in a black-box trial: the triage dataset's scripts were not rewritten when
    # the failure playbook changed, and `decisionops eval --dataset triage.yaml` (the
    # README's command) failed its hybrid case; `python -m evals.authoring` rewrites both.
    (tmp_path / "datasets").mkdir()
    (tmp_path / "scripted").mkdir()
    copy = tmp_path / "datasets" / f"{name}.yaml"
    shutil.copy(ROOT / "datasets" / f"{name}.yaml", copy)
    written = write_scripts(copy)
    for planner in ("llm", "hybrid"):
        recorded = json.loads((ROOT / "scripted" / f"{name}-{planner}.json").read_text("utf-8"))
        assert written[planner] == recorded


def test_an_urgent_case_planned_as_a_plain_one_fails_naming_the_argument(home: Path) -> None:
    dataset = load_dataset(E2E)
    urgent = next(c for c in dataset.cases if c.id == "e2e-failure-urgent")
    plain = next(c for c in dataset.cases if c.id == "e2e-failure-plain")
    mixed = urgent.model_copy(update={"prediction": plain.prediction})
    report = run_eval(dataset.model_copy(update={"cases": (mixed,)}), ["playbook"],
                      settings=Settings())
    (steps,) = [g for g in report.results[0].grades if g.grader == "expected_steps"]
    assert steps.passed is False
    assert "no maintenance.create_work_order step with priority {'eq': 'emergency'}" in steps.detail
    assert "no erp.create_purchase_order step with expedite {'eq': True}" in steps.detail
