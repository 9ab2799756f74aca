from __future__ import annotations

import re
from pathlib import Path

import pytest

from decisionops.agent.errors import ConfigError, InvalidInputError
from decisionops.agent.models import Plan, Prediction
from decisionops.agent.planner import PlanRequest, PlaybookPlanner
from decisionops.agent.playbooks import load_playbooks


def _prediction(**over: object) -> Prediction:
    base = dict(id="p-1", model="churn-gbm", kind="churn", entity_type="account",
                entity_id="ACC-10001", score=0.9, value_at_stake=40_000,
                features={"plan": "pro", "segment": "enterprise"},
                observed_at="2026-11-01T08:00:00Z")
    return Prediction.model_validate({**base, **over})


def test_bundled_playbooks_cover_three_kinds() -> None:
    book = load_playbooks()
    assert {"churn", "failure", "stockout"} <= book.kinds()


def test_playbook_planner_is_deterministic_and_typed() -> None:
    book = load_playbooks()
    playbook = book.for_prediction(_prediction())
    first = playbook.draft(_prediction(), decision_id="dec_1")
    second = playbook.draft(_prediction(), decision_id="dec_1")
    assert first.hash == second.hash
    offer = first.step("retention_offer")
    assert offer.arguments["discount_pct"] == 20  # native int from a whole-value template
    assert first.step("goodwill_credit").depends_on == ("retention_offer",)


def test_when_condition_drops_step_and_its_dependency_edge() -> None:
    book = load_playbooks()
    small = _prediction(value_at_stake=5_000)
    plan = book.for_prediction(small).draft(small, decision_id="dec_2")
    assert "goodwill_credit" not in {s.id for s in plan.steps}


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "custom.yaml"
    path.write_text(text)
    return folder


def test_user_playbook_replaces_bundled_one_by_name(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: churn-retention
kind: churn
trigger: {min_score: 0.99}
steps:
  - id: only
    function: support
    tool: support.open_ticket
    risk: low
    arguments: {account_id: "{{ prediction.entity_id }}", priority: low, subject: s, body: b}
""")
    book = load_playbooks(folder)
    assert book.get("churn-retention").trigger.min_score == 0.99


@pytest.mark.parametrize(("body", "expected"), [
    ("name: bad\nkind: churn\nsteps: []\n", "trigger"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 2}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}}\n", "trigger.min_score"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}, depends_on: [zz]}\n", "unknown step 'zz'"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {x: '{{ oops( }}'}}\n", "steps.a.arguments.x: template"),
    # each problem names its step by id (trial 18: "(top level)", "steps.1.risk")
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: notatool, arguments: {}}\n", "steps.a.tool"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}, when: 'score >'}\n", "steps.a.when: template"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}}\n  - {id: b, function: sales, tool: crm.create_task,"
     " arguments: {}, risk: lowish}\n", "steps.b.risk"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_invalid_playbooks_name_file_playbook_and_field(tmp_path: Path, body: str,
                                                        expected: str) -> None:
    folder = _write(tmp_path / "pb", body)
    with pytest.raises(ConfigError) as err:
        load_playbooks(folder)
    message = str(err.value)
    assert "custom.yaml" in message
    assert expected in message


def test_a_dependency_cycle_is_refused_at_load_naming_file_field_and_steps(
        tmp_path: Path) -> None:
    # Found in a black-box trial: the playbook loaded, then every decision's plan failed
    # validation ("dependency cycle") and the decision was held after repeated failures.
    folder = _write(tmp_path / "pb", """
name: loop
kind: churn
trigger: {min_score: 0.5}
steps:
  - {id: a, function: sales, tool: crm.create_task, arguments: {}, depends_on: [b]}
  - {id: b, function: sales, tool: crm.create_task, arguments: {}, depends_on: [a]}
  - {id: c, function: sales, tool: crm.create_task, arguments: {}}
""")
    with pytest.raises(ConfigError) as err:
        load_playbooks(folder)
    message = str(err.value)
    assert "custom.yaml" in message
    assert "playbook 'loop'" in message
    assert "steps.a.depends_on: dependency cycle among steps: a, b" in message
    assert err.value.details["field"] == "steps.a.depends_on"
    assert "(top level)" not in message


def test_missing_template_variable_is_an_error_naming_the_argument() -> None:
    book = load_playbooks()
    prediction = _prediction(kind="stockout", entity_type="sku_site", entity_id="SKU-1@DC-A",
                             features={"surplus_site": "DC-B", "shortfall_units": 10})
    with pytest.raises(Exception, match=r"steps\.transfer\.arguments\.sku"):
        book.for_prediction(prediction).draft(prediction, decision_id="dec_3")


@pytest.mark.parametrize(("features", "missing", "where"), [
    ({"sku": "SKU-1", "surplus_site": "DC-B", "shortfall_units": 10}, "features.site",
     "steps.transfer.arguments.to_site"),
    ({"site": "DC-A", "surplus_site": "DC-B", "shortfall_units": 10}, "features.sku",
     "steps.transfer.arguments.sku"),
])
def test_a_missing_feature_is_named_as_the_prediction_s_not_in_template_terms(
        features: dict, missing: str, where: str) -> None:
    # Found as a new user: "template failed: 'dict object' has no attribute 'site'".
    book = load_playbooks()
    prediction = _prediction(kind="stockout", entity_type="sku_site", entity_id="SKU-1@DC-A",
                             features=features)
    with pytest.raises(InvalidInputError) as caught:
        book.for_prediction(prediction).draft(prediction, decision_id="dec_3")
    assert caught.value.field == where
    assert f"the prediction has no {missing}" in caught.value.message
    assert "dict object" not in caught.value.message
    assert "template failed" not in caught.value.message


def test_a_feature_of_the_wrong_type_is_named_with_its_value(tmp_path: Path) -> None:
    book = load_playbooks()
    prediction = _prediction(kind="stockout", entity_type="sku_site", entity_id="SKU-1@DC-A",
                             score=0.9, features={"sku": "SKU-1", "site": "DC-A",
                                                  "forecast_units": "many", "on_hand": 3})
    with pytest.raises(InvalidInputError) as caught:
        book.for_prediction(prediction).draft(prediction, decision_id="dec_3")
    assert caught.value.field == "steps.purchase.arguments.quantity"
    assert "could not be computed from the prediction" in caught.value.message
    assert "'many'" in caught.value.message


# --------------------------------------------------------------------------- urgency


def _failure(**features: object) -> Prediction:
    return _prediction(id="f-1", model="asset-failure-lstm", kind="failure",
                       entity_type="asset", entity_id="AST-PMP-0042", score=0.8,
                       value_at_stake=90_000,
                       features={"site": "PLANT-GDANSK", "asset_class": "pump",
                                 "spare_part_sku": "SKU-71083",
                                 "remaining_useful_life_hours": 600, **features})


def _stockout(score: float = 0.7, **features: object) -> Prediction:
    return _prediction(id="s-1", model="demand", kind="stockout", entity_type="sku_site",
                       entity_id="SKU-11253@DC-MILAN", score=score, value_at_stake=4_000,
                       features={"sku": "SKU-11253", "site": "DC-MILAN", "on_hand": 200,
                                 "forecast_units": 640, **features})


def _draft(prediction: Prediction) -> Plan:
    book = load_playbooks()
    return book.for_prediction(prediction).draft(prediction, decision_id="dec_u")


@pytest.mark.parametrize("features", [
    {"horizon_days": 10},
    {"horizon_hours": 30},
    {"criticality": "Critical", "horizon_days": 60},
    {"asset_criticality": "high"},
    # The bundled model's own horizon (found in a trial: 20 hours left was planned as a
    # normal repair; the playbook did not read it).
    {"remaining_useful_life_hours": 20},
])
def test_failure_is_expedited_for_a_critical_asset_or_a_short_horizon(features: dict) -> None:
    plan = _draft(_failure(**features))
    order = plan.step("work_order").arguments
    assert order["priority"] == "emergency" and order["due_within_hours"] == 24
    assert "expedite" in order["description"]
    assert plan.step("spare_part").arguments["expedite"] is True
    assert plan.step("downtime").arguments["start_in_hours"] == 12


@pytest.mark.parametrize("features", [
    {},  # no horizon, no criticality: the plain path
    {"horizon_days": 60, "criticality": "low"},
    {"horizon_days": "soon", "criticality": 3},  # not a number / not text: missing
    {"horizon_days": -2},
])
def test_failure_takes_the_plain_path_otherwise(features: dict) -> None:
    plan = _draft(_failure(**features))
    order = plan.step("work_order").arguments
    assert order["priority"] == "high" and order["due_within_hours"] == 300
    assert "expedite" not in order["description"]
    assert plan.step("spare_part").arguments["expedite"] is False


def test_a_critical_asset_in_ten_days_differs_from_a_minor_one_in_sixty() -> None:
    critical = _draft(_failure(horizon_days=10, criticality="critical"))
    minor = _draft(_failure(horizon_days=60, criticality="low"))
    assert critical.hash != minor.hash
    assert "within 10 days, critical asset" in critical.step("work_order").arguments[
        "description"]


def test_stockout_orders_expedited_when_urgent_and_plain_otherwise() -> None:
    urgent = _draft(_stockout(horizon_days=3))
    assert urgent.step("purchase").arguments == {
        "sku": "SKU-11253", "site": "DC-MILAN", "quantity": 440, "expedite": True}
    critical = _draft(_stockout(criticality="critical", horizon_days=30))
    assert critical.step("purchase").arguments["expedite"] is True
    plain = _draft(_stockout(score=0.9, horizon_days=30))
    assert plain.step("purchase").arguments["expedite"] is False
    # Below the score bar and not urgent: no purchase at all, as before.
    assert "purchase" not in {s.id for s in _draft(_stockout(horizon_days=30)).steps}


def test_templates_read_any_feature_and_feature_values_stay_data(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: vip-churn
kind: churn
trigger: {min_score: 0.5}
urgency: {horizon_days_at_most: 5}
steps:
  - id: ticket
    function: support
    tool: support.open_ticket
    when: "features.get('segment') == 'enterprise' and (urgent or horizon_days is none)"
    arguments:
      account_id: "{{ prediction.entity_id }}"
      priority: "{{ 'urgent' if urgent else 'normal' }}"
      subject: "{{ features.segment }} / {{ criticality or 'unknown' }}"
      body: "{{ features.note }}"
""")
    book = load_playbooks(folder)
    note = "{{ prediction.__class__ }} {% for x in range(9) %}x{% endfor %}"
    vip = _prediction(features={"segment": "enterprise", "note": note, "horizon_days": 2})
    plan = book.get("vip-churn").draft(vip, decision_id="dec_v")
    ticket = plan.step("ticket").arguments
    assert ticket["priority"] == "urgent" and ticket["subject"] == "enterprise / unknown"
    assert ticket["body"] == note  # rendered as text, never evaluated
    later = _prediction(features={"segment": "enterprise", "note": "n", "horizon_days": 9})
    assert book.get("vip-churn").draft(later, decision_id="dec_w").steps == ()


def test_urgency_block_is_structured_and_validated(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: bad
kind: churn
trigger: {min_score: 0.5}
urgency: {horizon_days_at_most: -1, when: "score > 0"}
steps:
  - {id: s, function: support, tool: support.open_ticket, arguments: {}}
""")
    with pytest.raises(ConfigError) as err:
        load_playbooks(folder)
    assert "urgency" in str(err.value)


def test_sandbox_refuses_python_internals_in_a_playbook(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: sneaky
kind: churn
trigger: {min_score: 0.5}
steps:
  - id: s
    function: support
    tool: support.open_ticket
    arguments: {account_id: "{{ prediction.__class__.__mro__ }}", priority: low,
                subject: s, body: b}
""")
    book = load_playbooks(folder)
    with pytest.raises(InvalidInputError):
        book.get("sneaky").draft(_prediction(), decision_id="dec_s")


# --------------------------------------------------------------------------- revise


def _revised(*feedback: str, prediction: Prediction | None = None) -> Plan:
    planner = PlaybookPlanner(load_playbooks())
    return planner.draft(PlanRequest(decision_id="dec_r", prediction=prediction or _prediction(),
                                     playbook=None, version=2, feedback=feedback)).plan


def test_revise_removes_named_steps_and_sets_bounded_numbers() -> None:
    plan = _revised("Drop the goodwill credit; a 15% discount for 6 months is enough.")
    assert "goodwill_credit" not in {s.id for s in plan.steps}
    offer = plan.step("retention_offer").arguments
    assert (offer["discount_pct"], offer["duration_months"]) == (15, 6)
    assert plan.rationale.startswith("Revised after feedback: removed goodwill_credit; "
                                     "retention_offer.discount_pct 20 → 15; "
                                     "retention_offer.duration_months 12 → 6.")
    assert plan.version == 2


def test_revise_removal_takes_dependents_and_never_empties_the_plan() -> None:
    stockout = _stockout(score=0.9, surplus_site="DC-LYON", shortfall_units=100)
    plan = _revised("skip the transfer, no purchase and no warn sales", prediction=stockout)
    assert [s.id for s in plan.steps] == ["warn_sales"]
    assert "removed transfer; removed purchase" in plan.rationale
    assert "Refused: removing warn_sales would leave no step" in plan.rationale
    churn = _revised("remove the retention offer")  # not removable: nothing changes
    assert churn.step("retention_offer") and "Feedback not applied" in churn.rationale


def test_revise_refuses_values_outside_the_bounds_and_says_so() -> None:
    plan = _revised("discount 45%")
    assert plan.step("retention_offer").arguments["discount_pct"] == 20
    assert "Refused: retention_offer.discount_pct 45 is outside 1 to 30" in plan.rationale


def test_free_text_feedback_is_not_applied_and_the_rationale_says_what_can_be() -> None:
    plan = _revised("Please call the customer before any offer.")
    base = load_playbooks().for_prediction(_prediction()).draft(_prediction(), decision_id="dec_r",
                                                                version=2)
    assert plan.steps == base.steps
    assert "cannot apply free-text feedback" in plan.rationale
    assert "set retention_offer.discount_pct (1 to 30)" in plan.rationale
    assert "remove goodwill_credit, proactive_case, inform_account_manager" in plan.rationale
    draft = PlaybookPlanner(load_playbooks()).draft(PlanRequest(
        decision_id="dec_r", prediction=_prediction(), playbook=None, version=2,
        feedback=("Please call the customer before any offer.",)))
    assert draft.record.notes == [plan.rationale]


def test_feedback_entries_apply_oldest_first_and_deterministically() -> None:
    first = _revised("discount 10%", "discount 25%", "no support case")
    again = _revised("discount 10%", "discount 25%", "no support case")
    assert first == again and first.hash == again.hash
    assert first.step("retention_offer").arguments["discount_pct"] == 25
    assert "proactive_case" not in {s.id for s in first.steps}


def test_a_playbook_without_a_revise_block_says_it_can_change_nothing(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: churn-retention
kind: churn
trigger: {min_score: 0.5}
steps:
  - id: only
    function: support
    tool: support.open_ticket
    arguments: {account_id: "{{ prediction.entity_id }}", priority: low, subject: s, body: b}
""")
    planner = PlaybookPlanner(load_playbooks(folder))
    plan = planner.draft(PlanRequest(decision_id="d", prediction=_prediction(), playbook=None,
                                     version=2, feedback=("drop the only step",))).plan
    assert [s.id for s in plan.steps] == ["only"]
    assert "this playbook declares nothing revisable" in plan.rationale


@pytest.mark.parametrize("block, problem", [
    ("{remove: [nope]}", "unknown step 'nope'"),
    ("{set: {only.nope: {min: 1, max: 2}}}", "'only.nope' is no step argument"),
    ("{set: {only.priority: {min: 3, max: 2}}}", "min is above max"),
])
def test_a_revise_block_naming_unknown_steps_is_refused(tmp_path: Path, block: str,
                                                        problem: str) -> None:
    folder = _write(tmp_path / "pb", f"""
name: x
kind: churn
trigger: {{min_score: 0.5}}
revise: {block}
steps:
  - {{id: only, function: support, tool: support.open_ticket, arguments: {{priority: low}}}}
""")
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_playbooks(folder)


@pytest.mark.parametrize("feedback, removed", [
    ("Drop the goodwill credit.", {"goodwill_credit"}),
    ("please remove that support case", {"proactive_case"}),
    ("No credit; without the account manager task", {"goodwill_credit",
                                                      "inform_account_manager"}),
    ("I have no problem with the credit", set()),
    ("Don't drop the credit, it matters", set()),
    ("Keep the credit but skip the proactive case", {"proactive_case"}),
    ("Finance will not fund the goodwill credit this quarter", {"goodwill_credit"}),
    ("we can't approve a credit for them", {"goodwill_credit"}),
    ("Support won't open a case for an account in legal review", {"proactive_case"}),
    ("We will not drop the credit", set()),
    ("I can't believe they want a credit", set()),
    ("We won't fund anything beyond the offer", set()),
])
def test_revise_reads_removals_plainly(feedback: str, removed: set[str]) -> None:
    base = {"retention_offer", "proactive_case", "goodwill_credit", "inform_account_manager"}
    assert {s.id for s in _revised(feedback).steps} == base - removed


def test_a_playbook_can_name_the_feature_that_carries_the_horizon(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: rul
kind: failure
trigger: {min_score: 0.5}
urgency:
  horizon_days_at_most: 5
  horizon_from: {feature: remaining_useful_life_hours, unit: hours}
steps:
  - id: order
    function: maintenance
    tool: maintenance.create_work_order
    arguments:
      asset_id: "{{ prediction.entity_id }}"
      priority: "{{ 'emergency' if urgent else 'normal' }}"
      description: "{{ horizon_days }}"
      due_within_hours: 24
""")
    book = load_playbooks(folder)

    def order(**features: object) -> dict:
        prediction = _failure(**features)
        return book.get("rul").draft(prediction, decision_id="d").step("order").arguments

    assert order(remaining_useful_life_hours=48) == {
        "asset_id": "AST-PMP-0042", "priority": "emergency", "description": 2.0,
        "due_within_hours": 24}
    assert order()["priority"] == "normal"  # 600 hours: 25 days
    # horizon_days, when the prediction has it, comes first.
    assert order(remaining_useful_life_hours=48, horizon_days=30)["priority"] == "normal"


def test_a_stockout_without_a_forecast_value_says_unknown_not_none() -> None:
    # Found in a trial: the Slack warning read "Forecast demand None against 200 on hand".
    plan = _draft(_stockout())
    assert plan.step("warn_sales").arguments["body"].startswith(
        "Forecast demand unknown against 200 on hand")



def test_a_user_s_playbook_is_checked_against_the_policies_and_tools_at_start(
        tmp_path: Path) -> None:
    # Found in a black-box trial: a playbook step with an unknown function, an unknown
    # tool, a tool its function may not use or a missing argument loaded without a word;
    # every prediction of its kind then went to a person naming only the first problem.
    # And a playbook of a kind a bundled one answers first was silently never used.
    from decisionops.agent.errors import ConfigError
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "x.yaml").write_text("""
name: x-play
kind: x_kind
trigger: {min_score: 0.5}
steps:
  - {id: a, function: salez, tool: crm.create_task, arguments: {account_id: "{{ entity_id }}"}}
  - {id: b, function: sales, tool: crm.create_tsk, arguments: {}}
  - {id: c, function: sales, tool: finance.issue_credit, arguments: {account_id: x}}
---
""".replace("---\n", ""))
    (folder / "churn.yaml").write_text("""
name: my-churn
kind: churn
trigger: {min_score: 0.5}
steps:
  - {id: t, function: sales, tool: crm.create_task,
     arguments: {account_id: "{{ entity_id }}", subject: call, due_in_days: 2}}
""")
    with pytest.raises(ConfigError) as refused:
        Runtime(Settings(home=tmp_path / "home", playbooks_dir=folder), actor="t")
    message = refused.value.message
    for says in ("playbook 'x-play': steps.a.function: unknown function 'salez'",
                 "steps.b.tool: unknown tool 'crm.create_tsk'",
                 "steps.c.tool: finance.issue_credit is not allowed for sales",
                 "steps.c.arguments: finance.issue_credit needs amount",
                 "playbook 'my-churn': never used: 'churn-retention'"):
        assert says in message, message
    assert refused.value.details["field"] == "playbooks_dir"
    # Each problem names the file it is in, not only the folder (trial 12: a folder of
    # many files left the user to find which one held 'x-play').
    assert f"{folder / 'x.yaml'}: playbook 'x-play': steps.a.function" in message, message
    assert f"{folder / 'churn.yaml'}: playbook 'my-churn': never used" in message, message


def test_a_step_id_used_twice_is_refused_at_load(tmp_path: Path) -> None:
    """(review: like a cycle, every plan drafted from it would be refused, per decision)"""
    folder = _write(tmp_path / "pb", """
name: twice
kind: churn
trigger: {min_score: 0.5}
steps:
  - {id: a, function: sales, tool: crm.create_task, arguments: {}}
  - {id: a, function: sales, tool: crm.create_retention_offer, arguments: {}}
""")
    with pytest.raises(ConfigError) as err:
        load_playbooks(folder)
    assert "playbook 'twice'" in str(err.value) and "step id 'a' is used twice" in str(err.value)


def test_bundled_playbooks_the_policy_leaves_no_way_to_run_are_set_aside(
        tmp_path: Path) -> None:
    """(trial 12: with a functions file of their own, without sales or support, the
    bundled churn playbook still answered every churn prediction, and each decision
    ended needs_human: 'unknown function sales')"""
    from decisionops.agent.policy import Policies
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    policies = Policies.model_validate({"functions": {
        "finance": {"approvers": ["dana@finance"], "tools": ["finance.issue_credit"]},
        "fraud_ops": {"approvers": ["li@fraud"], "tools": ["support.open_ticket"]}}})
    book = load_playbooks().fitting({n: p.tools for n, p in policies.functions.items()})
    assert "churn-retention" not in book.playbooks and "churn" not in book.kinds()
    assert "sales" in book.off["churn-retention"] and "support" in book.off["churn-retention"]
    # The bundled policy runs every bundled playbook.
    with Runtime(Settings(home=tmp_path / "home"), actor="t") as rt:
        assert rt.playbooks.off == {} and "churn" in rt.playbooks.kinds()
    functions = tmp_path / "functions.yaml"
    functions.write_text("functions:\n  finance:\n    approvers: [dana@finance]\n"
                         "    tools: [finance.issue_credit]\n")
    with Runtime(Settings(home=tmp_path / "own", functions_file=functions), actor="t") as rt:
        assert "churn-retention" in rt.playbooks.off and "churn" not in rt.playbooks.kinds()
        rt.ingest([Prediction(id="c-1", model="m", kind="churn", entity_type="account",
                              entity_id="ACC-10004", score=0.95, value_at_stake=40_000,
                              observed_at="2026-11-20T08:00:00Z")], source="test")
        rt.triage_pending()
        view = rt.store.prediction_views.get("c-1")
        assert view.outcome == "needs_human", view  # a person decides; no doomed decision


def _failure_revised(*feedback: str) -> Plan:
    prediction = _failure(remaining_useful_life_hours=600, asset_class="compressor")
    planner = PlaybookPlanner(load_playbooks())
    return planner.draft(PlanRequest(decision_id="dec_f", prediction=prediction,
                                     playbook=None, version=2, feedback=feedback)).plan


@pytest.mark.parametrize("feedback, due, downtime, said", [
    # a unit other than the argument's is converted where it can be (trial 23: "7 days"
    # set 7 hours)
    ("repair due within 7 days", 168, None, "work_order.due_within_hours 300 → 168"),
    ("make the repair due within 2 weeks", 336, None, "due_within_hours 300 → 336"),
    ("downtime of 180 minutes", None, 3, "downtime.duration_hours 8 → 3"),
    # two values for one argument: which one is meant is not guessed (the last won)
    ("downtime 6 hours is right; 2 hours downtime is too short", None, None,
     "downtime.duration_hours: the feedback names 6 and 2"),
    # the value moved from is not the value asked for
    ("cut the downtime from 8 hours to 3 hours", None, 3, "downtime.duration_hours 8 → 3"),
    ("downtime 4 hours, not 8", None, 4, "downtime.duration_hours 8 → 4"),
    # numbers read whole (trial 23: "1,000" read as 1, "1e2" as 1)
    ("repair due within 1,000 hours", None, None,
     "work_order.due_within_hours 1000 is outside 4 to 720"),
])
def test_revise_reads_numbers_with_their_units_and_refuses_what_it_cannot_read(
        feedback: str, due: int | None, downtime: int | None, said: str) -> None:
    plan = _failure_revised(feedback)
    base = _failure_revised("nothing")
    assert plan.step("work_order").arguments["due_within_hours"] == (
        due if due is not None else base.step("work_order").arguments["due_within_hours"])
    assert plan.step("downtime").arguments["duration_hours"] == (
        downtime if downtime is not None else base.step("downtime").arguments["duration_hours"])
    assert said in plan.rationale


@pytest.mark.parametrize("feedback", [
    "please do not, under any circumstances, drop the spare part",
    "we cannot skip the spare part",
    "We mustn't remove the spare part",
])
def test_a_negated_removal_removes_nothing(feedback: str) -> None:
    """(trial 23: a negation a comma away, or "cannot", removed the step it protected)"""
    assert "spare_part" in {s.id for s in _failure_revised(feedback).steps}


def test_a_unit_the_argument_cannot_take_is_refused_naming_it() -> None:
    plan = _failure_revised("repair due within 2 months")
    assert plan.step("work_order").arguments["due_within_hours"] == 300
    assert "work_order.due_within_hours: 2 months is not in hours" in plan.rationale


@pytest.mark.parametrize("feedback", [
    # trial 24: each removed the step it meant to keep
    "Under no circumstances drop the goodwill credit",
    "Nobody should drop the credit",
    "it would be a mistake to drop the credit",
    "Drop the goodwill credit? Absolutely not, keep it.",
    "The offer makes no sense without the goodwill credit",
    "There is no credit risk here, make the discount 15%",
])
def test_a_removal_read_in_context_keeps_the_step(feedback: str) -> None:
    assert "goodwill_credit" in {s.id for s in _revised(feedback).steps}


@pytest.mark.parametrize("feedback, said", [
    # trial 24: each was read as the argument's own unit or first number
    ("the repair is due within 10 business days", "10 business days is not in hours"),
    ("repair due within 5 years", "5 years is not in hours"),
    ("downtime of 2-3 hours", "downtime.duration_hours: 2-3 is a range; name one value"),
    ("downtime of 2 to 3 hours", "downtime.duration_hours: 2 to 3 is a range"),
])
def test_a_unit_suffix_or_range_it_cannot_read_is_refused(feedback: str, said: str) -> None:
    plan = _failure_revised(feedback)
    base = _failure_revised("nothing")
    assert plan.steps == base.steps
    assert said in plan.rationale


def test_a_value_said_to_be_too_much_is_not_the_one_asked_for() -> None:
    plan = _revised("A 20% discount is too much; 15% please")
    assert plan.step("retention_offer").arguments["discount_pct"] == 20  # nothing read
    assert "Feedback not applied" in plan.rationale
    assert _revised("a discount of 1 000 percent").step(  # "1 000" is a thousand, not 1
        "retention_offer").arguments["discount_pct"] == 20
