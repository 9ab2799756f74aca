from __future__ import annotations

import re
from pathlib import Path

import pytest

from decisionops.agent.errors import ConfigError, PermissionDenied
from decisionops.agent.models import Risk, Step
from decisionops.agent.policy import load_policies


def _credit(amount: float, risk: Risk = Risk.MEDIUM) -> Step:
    return Step(id="credit", function="finance", tool="finance.issue_credit", risk=risk,
                arguments={"account_id": "ACC-1", "amount": amount, "currency": "EUR",
                           "reason": "r"})


def test_bundled_policies_have_six_functions() -> None:
    assert set(load_policies().functions) == {"sales", "support", "finance", "operations",
                                              "supply_chain", "maintenance"}


def test_auto_approval_needs_low_risk_and_amount_under_the_auto_limit() -> None:
    finance = load_policies().get("finance")
    assert finance.needs_human([_credit(80)]) is None
    assert "amount" in finance.needs_human([_credit(120)])
    assert "risk" in finance.needs_human([_credit(80, Risk.HIGH)])


def test_limits_report_each_problem() -> None:
    finance = load_policies().get("finance")
    problems = finance.limit_problems("finance.issue_credit",
                                      {"amount": 900, "currency": "JPY"})
    assert problems == ["amount: 900 is over the limit of 500",
                        "currency: 'JPY' is not one of the allowed values (EUR, USD, GBP)"]


def test_only_named_approvers_may_answer() -> None:
    policies = load_policies()
    policies.authorize("finance", "dana@finance")
    with pytest.raises(PermissionDenied, match="raj@sales is not an approver of finance"):
        policies.authorize("finance", "raj@sales")


def test_bad_policy_file_names_the_function_and_field(tmp_path: Path) -> None:
    path = tmp_path / "functions.yaml"
    path.write_text("functions:\n  finance:\n    approvers: []\n    tools: [finance.issue_credit]\n")
    with pytest.raises(ConfigError, match=r"functions\.yaml.*finance\.approvers"):
        load_policies(path)
    path.write_text("functions:\n  finance:\n    approvers: [a]\n    tools: [x.y]\n"
                    "    limits: {finance.issue_credit: {amount: {max: 5}}}\n")
    with pytest.raises(ConfigError, match="not in this function's tools"):
        load_policies(path)


@pytest.mark.parametrize(("edit", "says"), [
    # Found in a black-box trial: a misspelt argument under limits was accepted, and the
    # limit it meant bounded nothing (a 45 % discount passed a 30 % cap).
    (("discount_pct: {max: 30}", "discount_pc: {max: 30}"),
     "functions.sales.limits.crm.create_retention_offer.discount_pc: "
     "crm.create_retention_offer takes no argument 'discount_pc'"),
    (("sum: amount", "sum: amont"), "totals[0].sum: finance.issue_credit takes no argument"),
    (("sum: amount", "sum: currency"), "finance.issue_credit's currency is string, not a "
                                       "number"),
    (("amount: {max: 100}", "amount: {max: 900}"),
     "auto_approve.limits.finance.issue_credit.amount: max 900 is above the hard limit 500"),
    # (trial 12: a negative hard limit loaded, then refused every plan at runtime)
    (("duration_hours: {max: 24}", "duration_hours: {max: -1}"),
     "functions.operations.limits.operations.schedule_downtime.duration_hours: max -1 leaves "
     "no value the tool takes (operations.schedule_downtime's duration_hours is"),
    (("amount: {max: 500}", "amount: {max: 300000, min: 200000}"),
     "functions.finance.limits.finance.issue_credit.amount: min 200000 leaves no value the "
     "tool takes (finance.issue_credit's amount is at most 100000)"),
])
def test_a_limit_on_an_argument_the_tool_does_not_take_is_refused_at_start(
        tmp_path: Path, edit: tuple[str, str], says: str) -> None:
    from importlib import resources

    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    text = (resources.files("decisionops.agent") / "data" / "functions.yaml").read_text()
    assert edit[0] in text
    path = tmp_path / "functions.yaml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=re.escape(says)):
        Runtime(Settings(home=tmp_path / "home", functions_file=path), actor="t")


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path: Path) -> None:
    # Found in a black-box trial: a second `amount:` under limits (or a second
    # `finance:` block) replaced the first without a word, weakening a hard limit.
    path = tmp_path / "functions.yaml"
    path.write_text("functions:\n  finance:\n    approvers: [a]\n"
                    "    tools: [finance.issue_credit]\n"
                    "    limits:\n      finance.issue_credit:\n"
                    "        amount: {max: 500}\n        amount: {max: 5000000}\n")
    with pytest.raises(ConfigError, match=r"functions\.yaml:8: .*key 'amount' is given twice "
                                          r"\(first on line 7\)"):
        load_policies(path)


@pytest.mark.parametrize(("edit", "says"), [
    # Found in a black-box trial: each loaded without a word.
    (("approvers: [dana@finance, omar@finance]", "approvers: [dana@finance, '']"),
     "an approver's name is empty"),
    (("approvers: [dana@finance, omar@finance]", "approvers: [dana@finance, dana@finance]"),
     "dana@finance listed twice"),
    (("amount: {max: 500}", "amount: {min: 600, max: 500}"), "min 600 is above max 500"),
    # Found in a black-box trial: names `users add` refuses, so nobody could ever answer.
    (("approvers: [dana@finance, omar@finance]", "approvers: [dana@finance, zoë@finance]"),
     "approvers: 'zoë@finance' can never be a user's name"),
    (("approvers: [dana@finance, omar@finance]", "approvers: [Dana@finance, omar@finance]"),
     "approvers: 'Dana@finance' can never be a user's name"),
    (("approvers: [dana@finance, omar@finance]", "approvers: [dana@finance, 'omar finance']"),
     "approvers: 'omar finance' can never be a user's name"),
])
def test_policies_that_cannot_mean_what_they_say_are_refused(
        tmp_path: Path, edit: tuple[str, str], says: str) -> None:
    from importlib import resources

    text = (resources.files("decisionops.agent") / "data" / "functions.yaml").read_text()
    assert edit[0] in text, edit[0]
    path = tmp_path / "functions.yaml"
    path.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=says):
        load_policies(path)


def test_an_approver_who_could_never_sign_in_is_refused_naming_file_function_and_name(
        tmp_path: Path) -> None:
    path = tmp_path / "functions.yaml"
    path.write_text("functions:\n  fraud_ops:\n    approvers: [zoë@fraud, li@fraud]\n"
                    "    tools: [finance.issue_credit]\n")
    with pytest.raises(ConfigError) as err:
        load_policies(path)
    message = str(err.value)
    assert "functions.yaml" in message
    assert "functions.fraud_ops: approvers: 'zoë@fraud'" in message
    assert "1-100 lowercase letters, digits or . _ @ -, starting with a letter" in message
    assert "li@fraud" not in message


def test_a_limit_is_read_against_the_tools_bounds_in_either_schema_draft() -> None:
    """(review: an OpenAPI 3.0 spec says ``exclusiveMinimum: true`` beside ``minimum``;
    read as a number it refused a valid limit of 0.3 as below 1)"""
    from decisionops.agent.policy import ArgumentLimit
    from decisionops.agent.runtime import _leaves_nothing

    draft4 = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}
    assert _leaves_nothing("shop.discount", "rate", draft4, ArgumentLimit(max=0.3)) is None
    assert "more than 0" in _leaves_nothing("shop.discount", "rate", draft4,
                                            ArgumentLimit(max=0))
    inclusive = {**draft4, "exclusiveMinimum": False}
    assert _leaves_nothing("shop.discount", "rate", inclusive, ArgumentLimit(max=0)) is None
    later = {"type": "number", "exclusiveMaximum": 1}
    assert "less than 1" in _leaves_nothing("shop.discount", "rate", later,
                                            ArgumentLimit(min=1))


def test_a_start_check_names_the_functions_file(tmp_path: Path) -> None:
    """(trial 12: 'functions.fraud_ops.tools: unknown tool(s) notify.sendd', no file)"""
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    path = tmp_path / "functions.yaml"
    path.write_text("functions:\n  fraud_ops:\n    approvers: [li@fraud]\n"
                    "    tools: [notify.sendd]\n")
    with pytest.raises(ConfigError) as caught:
        Runtime(Settings(home=tmp_path / "home", functions_file=path), actor="t")
    assert caught.value.message == (f"{path}: functions.fraud_ops.tools: unknown tool(s) "
                                    "notify.sendd")
    assert caught.value.details["field"] == "functions.fraud_ops.tools"
