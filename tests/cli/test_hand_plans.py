"""``decisionops predictions plan``: a person writes the plan of a prediction waiting in
the queue; its decision starts through the loop with planner ``hand`` (shown by
``decisions show`` and ``plan explain``), each function approves its part, and a crash
while starting it leaves one decision that completes once. Bad input names the option
and changes nothing."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.cli.conftest import Cli
from tests.cli.test_predictions import _snapshot, loaded  # noqa: F401  (fixture)

PLAN = """
- id: offer
  function: sales
  tool: crm.create_retention_offer
  arguments: {account_id: ACC-10003, offer_type: discount, discount_pct: 10,
              duration_months: 6}
  rationale: a loyal account flagged by the fraud model
- id: credit
  function: finance
  tool: finance.issue_credit
  arguments: {account_id: ACC-10003, amount: 150, currency: EUR, reason: goodwill}
  depends_on: [offer]
"""


def _plan_file(cli: Cli, text: str = PLAN, name: str = "plan.yaml") -> str:
    path = cli.cwd / name
    path.write_text(text)
    return str(path)


def _decision_of(cli: Cli, prediction_id: str) -> dict[str, Any]:
    decisions = [d for d in cli.json("decisions", "list")
                 if d["prediction_id"] == prediction_id]
    assert len(decisions) == 1, decisions
    return decisions[0]


def _effects(cli: Cli, tool: str) -> list[str]:
    with sqlite3.connect(cli.cwd / "home" / "enterprise.sqlite") as conn:
        return [key for t, key in conn.execute("select tool, idempotency_key from tool_calls")
                if t == tool]


def _approve_all(cli: Cli, decision_id: str) -> None:
    names = {"sales": "raj@sales", "finance": "dana@finance"}
    for approval in cli.json("approvals", "list"):
        if approval["decision_id"] == decision_id:
            cli("approvals", "approve", approval["id"], "--as", names[approval["function"]],
                "--no-apply")


def test_plan_by_hand_starts_a_decision_that_still_needs_approval(
        loaded: Cli) -> None:  # noqa: F811
    loaded.approvers("raj@sales", "dana@finance")
    out = loaded("predictions", "plan", "p-fraud", "--steps", _plan_file(loaded),
                 "--as", "olga", "--note", "called them").stdout
    assert "planned_by_hand: planned by hand by olga" in out and "decision dec_" in out
    shown = loaded.json("predictions", "show", "p-fraud")
    assert (shown["outcome"], shown["reason"], shown["decision_status"]) == (
        "act", "planned_by_hand", "awaiting_approval")
    assert shown["hand_plan"]["author"] == "olga" and len(shown["hand_plan"]["hash"]) == 64
    assert "plan by hand: olga" in loaded("predictions", "show", "p-fraud").stdout
    decision = _decision_of(loaded, "p-fraud")["id"]
    text = loaded("decisions", "show", decision).stdout
    assert "plan v1 by hand (written by hand by olga)" in text
    explained = loaded.json("plan", "explain", decision)
    assert [v["planner"] for v in explained["versions"]] == ["hand"]
    assert not _effects(loaded, "crm.create_retention_offer")  # nobody approved yet
    _approve_all(loaded, decision)
    loaded("run", "--once")
    assert _decision_of(loaded, "p-fraud")["status"] == "completed"
    assert len(_effects(loaded, "crm.create_retention_offer")) == 1
    assert len(_effects(loaded, "finance.issue_credit")) == 1
    events = [e for e in loaded.json("ledger", "list") if e["event"] ==
              "prediction.planned_by_hand"]
    assert [(e["actor"], e["body"]["channel"]) for e in events] == [("olga", "cli")]


def test_a_crash_while_starting_a_hand_plan_leaves_one_decision(loaded: Cli) -> None:  # noqa: F811
    loaded.approvers("raj@sales", "dana@finance")
    loaded("predictions", "plan", "p-fraud", "--steps", _plan_file(loaded), "--as", "olga",
           "--no-start")
    crashed = loaded("run", "--once", code=86, env={"DECISIONOPS_CRASH_AT": "after_route"})
    assert crashed.returncode == 86
    loaded("run", "--once")  # the dead process's lease is taken over; nothing is restarted
    loaded("run", "--once")
    decision = _decision_of(loaded, "p-fraud")
    asked = [a for a in loaded.json("approvals", "list") if a["decision_id"] == decision["id"]]
    assert sorted(a["function"] for a in asked) == ["finance", "sales"]
    assert {a["plan_version"] for a in asked} == {1}
    explained = loaded.json("plan", "explain", decision["id"])
    assert [v["planner"] for v in explained["versions"]] == ["hand"]
    _approve_all(loaded, decision["id"])
    loaded("run", "--once")
    assert _decision_of(loaded, "p-fraud")["status"] == "completed"
    keys = _effects(loaded, "crm.create_retention_offer") + _effects(loaded,
                                                                     "finance.issue_credit")
    assert len(keys) == len(set(keys)) == 2


@pytest.mark.parametrize(("steps", "extra", "says"), [
    (PLAN.replace("amount: 150", "amount: 5000"), (), "steps.credit.arguments.amount"),
    (PLAN.replace("function: sales", "function: marketing"), (), "unknown function"),
    ("- id: [", (), "not valid YAML or JSON"),
    (None, (), "--steps: cannot read"),
    (PLAN, ("--as", "ghost"), "--as"),
])
def test_bad_input_names_the_field_and_changes_nothing(loaded: Cli, steps: str | None,  # noqa: F811
                                                      extra: tuple, says: str) -> None:
    path = _plan_file(loaded, steps) if steps is not None else str(loaded.cwd / "missing.yaml")
    before = _snapshot(loaded)
    args = extra or ("--as", "olga")
    proc = loaded("predictions", "plan", "p-fraud", "--steps", path, *args, code=2)
    assert says in proc.stderr
    assert _snapshot(loaded) == before


def test_a_prediction_not_in_the_queue_is_refused(loaded: Cli) -> None:  # noqa: F811
    before = _snapshot(loaded)
    proc = loaded("predictions", "plan", "p-act", "--steps", _plan_file(loaded),
                  "--as", "olga", code=None)
    assert proc.returncode != 0 and "does not need a human" in proc.stderr
    assert _snapshot(loaded) == before


def test_help_has_an_example(cli: Cli) -> None:
    out = cli("predictions", "plan", "--help").stdout
    assert "Example: decisionops predictions plan p-17 --steps plan.yaml --as olga" in out
    assert "crm.create_retention_offer" in out
