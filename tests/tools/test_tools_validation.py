"""Bad arguments are refused before any effect, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from decisionops.agent.errors import NotFoundError, ToolArgumentsError, ToolCallError
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import VALID

BAD = [
    ("finance.issue_credit", {"amount": 0}, "amount"),
    # rounds to 0.00 in cents (found: an edit to 0.001 was approved, then refused at
    # execution, and the approved work was lost)
    ("finance.issue_credit", {"amount": 0.001}, "amount"),
    ("finance.issue_credit", {"amount": 100_000.01}, "amount"),
    ("finance.issue_credit", {"amount": float("nan")}, "amount"),
    ("finance.issue_credit", {"currency": "eur"}, "currency"),
    ("crm.create_retention_offer", {"discount_pct": 51}, "discount_pct"),
    ("crm.create_retention_offer", {"discount_pct": 0}, "discount_pct"),
    ("crm.create_retention_offer", {"offer_type": "refund"}, "offer_type"),
    ("crm.create_retention_offer", {"duration_months": 25}, "duration_months"),
    ("crm.create_retention_offer", {"note": "x" * 501}, "note"),
    ("crm.create_task", {"owner_role": "ceo"}, "owner_role"),
    ("crm.create_task", {"due_in_days": 0}, "due_in_days"),
    ("support.open_ticket", {"subject": "x" * 201}, "subject"),
    ("support.open_ticket", {"priority": "whenever"}, "priority"),
    ("erp.create_stock_transfer", {"to_site": "DC-LYON"}, "to_site"),
    ("erp.create_stock_transfer", {"quantity": 0}, "quantity"),
    ("erp.create_stock_transfer", {"quantity": "many"}, "quantity"),
    ("erp.create_purchase_order", {"quantity": 1_000_001}, "quantity"),
    ("maintenance.create_work_order", {"due_within_hours": 721}, "due_within_hours"),
    ("maintenance.create_work_order", {"priority": "asap"}, "priority"),
    ("operations.schedule_downtime", {"duration_hours": 73}, "duration_hours"),
    ("operations.schedule_downtime", {"start_in_hours": -1}, "start_in_hours"),
    ("notify.send", {"to": "sales-ops"}, "to"),
    ("notify.send", {"channel": "email", "to": "#sales-ops"}, "to"),
    ("notify.send", {"channel": "sms"}, "channel"),
    ("notify.send", {"body": ""}, "body"),
]


@pytest.mark.parametrize(("tool", "change", "field"), BAD)
def test_bad_argument_names_field_and_changes_nothing(
        registry: ToolRegistry, enterprise: Enterprise, tool: str, change: dict[str, Any],
        field: str) -> None:
    counts = enterprise.counts()
    with pytest.raises(ToolArgumentsError) as caught:
        registry.call(tool, {**VALID[tool], **change}, idempotency_key="k")
    assert caught.value.field == field
    assert caught.value.location == tool
    assert enterprise.counts() == counts
    assert enterprise.effects() == []


def test_missing_and_unknown_fields_are_all_listed(registry: ToolRegistry) -> None:
    args = {k: v for k, v in VALID["finance.issue_credit"].items() if k != "reason"}
    with pytest.raises(ToolArgumentsError) as caught:
        registry.validate("finance.issue_credit",
                          {**args, "amount": -5, "idempotency_key": "sneaky", "approved": True})
    error = caught.value
    assert error.field == "amount"
    assert error.details["problems"] == [
        "amount: Input should be greater than 0",
        "reason: Field required",
        "idempotency_key: Extra inputs are not permitted",
        "approved: Extra inputs are not permitted",
    ]
    assert "4 problems" in str(error)


def test_a_validator_s_own_message_reads_without_pydantic_s_prefix(
        registry: ToolRegistry) -> None:
    # Found in a black-box trial: "to_site: Value error, ..." reached users.
    with pytest.raises(ToolArgumentsError) as caught:
        registry.validate("finance.issue_credit",
                          {**VALID["finance.issue_credit"], "amount": 0.001})
    assert caught.value.details["problems"] == [
        "amount: 0.001 rounds to 0.00; the smallest amount is 0.01"]
    assert "Value error" not in str(caught.value)


def test_validate_returns_normalized_arguments(registry: ToolRegistry) -> None:
    normalized = registry.validate("erp.create_purchase_order",
                                   {"sku": " SKU-88412 ", "site": "DC-MILAN", "quantity": "40"})
    assert normalized == {"sku": "SKU-88412", "site": "DC-MILAN", "quantity": 40,
                          "expedite": False}
    credit = registry.validate("finance.issue_credit",
                               {**VALID["finance.issue_credit"], "amount": 10.004})
    assert credit["amount"] == 10.0


def test_arguments_must_be_an_object(registry: ToolRegistry) -> None:
    with pytest.raises(ToolArgumentsError, match="must be an object"):
        registry.validate("notify.send", ["#sales-ops"])  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_idempotency_key_is_checked(registry: ToolRegistry, enterprise: Enterprise,
                                    key: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        registry.call("notify.send", VALID["notify.send"], idempotency_key=key)
    assert caught.value.field == "idempotency_key"
    assert enterprise.rows("outbox") == []


def test_unknown_tool(registry: ToolRegistry) -> None:
    for attempt in (lambda: registry.spec("finance.refund"),
                    lambda: registry.validate("finance.refund", {}),
                    lambda: registry.call("finance.refund", {}, idempotency_key="k")):
        with pytest.raises(NotFoundError, match=r"finance\.refund"):
            attempt()


@pytest.mark.parametrize(("tool", "change", "named"), [
    ("finance.issue_credit", {"account_id": "ACC-99999"}, "account 'ACC-99999'"),
    ("crm.create_retention_offer", {"account_id": "ACC-99999"}, "account 'ACC-99999'"),
    ("support.open_ticket", {"account_id": "ACC-99999"}, "account 'ACC-99999'"),
    ("maintenance.create_work_order", {"asset_id": "AST-PMP-9999"}, "asset 'AST-PMP-9999'"),
    ("operations.schedule_downtime", {"asset_id": "AST-PMP-9999"}, "asset 'AST-PMP-9999'"),
    ("erp.create_stock_transfer", {"sku": "SKU-00000"}, "sku 'SKU-00000'"),
    ("erp.create_stock_transfer", {"to_site": "DC-ATLANTIS"}, "site 'DC-ATLANTIS'"),
    ("erp.create_purchase_order", {"site": "DC-ATLANTIS"}, "site 'DC-ATLANTIS'"),
])
def test_unknown_reference_fails_for_good_and_changes_nothing(
        registry: ToolRegistry, enterprise: Enterprise, tool: str, change: dict[str, Any],
        named: str) -> None:
    counts = enterprise.counts()
    with pytest.raises(ToolCallError, match=named) as caught:
        registry.call(tool, {**VALID[tool], **change}, idempotency_key="k")
    assert caught.value.retryable is False
    assert enterprise.counts() == counts


def test_unknown_reference_in_a_read(registry: ToolRegistry) -> None:
    with pytest.raises(ToolCallError, match="unknown account 'ACC-99999'"):
        registry.call("crm.get_account", {"account_id": "ACC-99999"}, idempotency_key="k")


def test_credit_in_another_currency_is_refused(registry: ToolRegistry,
                                               enterprise: Enterprise) -> None:
    with pytest.raises(ToolCallError, match="billed in EUR, not USD") as caught:
        registry.call("finance.issue_credit", {**VALID["finance.issue_credit"], "currency": "USD"},
                      idempotency_key="k")
    assert not caught.value.retryable
    assert enterprise.rows("credits") == []
