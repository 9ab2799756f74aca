"""Each compensation undoes its tool's effect, and can be retried safely."""

from __future__ import annotations

from typing import Any

import pytest

from decisionops.agent.errors import ToolCallError
from decisionops.agent.ports import ToolReceipt
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import CREATED_IN, VALID

COMPENSATED = sorted(tool for tool in VALID if tool != "notify.send")
UNDONE_STATUS = {
    "crm.create_retention_offer": "withdrawn", "crm.create_task": "cancelled",
    "support.open_ticket": "closed", "finance.issue_credit": "voided",
    "erp.create_stock_transfer": "cancelled", "erp.create_purchase_order": "cancelled",
    "maintenance.create_work_order": "cancelled", "operations.schedule_downtime": "cancelled",
}


def compensate(registry: ToolRegistry, receipt: ToolReceipt, key: str) -> ToolReceipt:
    """What the executor does: build the compensating call from the spec and the receipt."""
    spec = registry.spec(receipt.tool).compensation
    assert spec is not None
    arguments: dict[str, Any] = {name: receipt.result[field]
                                 for name, field in spec.arguments_from_result.items()}
    return registry.call(spec.tool, {**arguments, **spec.fixed_arguments}, idempotency_key=key)


@pytest.mark.parametrize("tool", COMPENSATED)
def test_compensation_undoes_the_effect(registry: ToolRegistry, enterprise: Enterprise,
                                        tool: str) -> None:
    done = registry.call(tool, VALID[tool], idempotency_key="do")
    undone = compensate(registry, done, "undo")

    (record,) = enterprise.rows(CREATED_IN[tool])
    assert record["status"] == UNDONE_STATUS[tool]
    assert record["status_reason"] == "compensated"
    assert undone.result["status"] == UNDONE_STATUS[tool]
    assert [e.tool for e in enterprise.effects()] == [tool, undone.tool]


@pytest.mark.parametrize("tool", COMPENSATED)
def test_compensation_is_safe_to_retry(registry: ToolRegistry, enterprise: Enterprise,
                                       tool: str) -> None:
    done = registry.call(tool, VALID[tool], idempotency_key="do")
    compensate(registry, done, "undo")
    assert compensate(registry, done, "undo").replayed
    again = compensate(registry, done, "undo-again")  # a new key: a no-op, not an error
    assert not again.replayed
    assert again.result["previous_status"] == UNDONE_STATUS[tool]
    (record,) = enterprise.rows(CREATED_IN[tool])
    assert record["status"] == UNDONE_STATUS[tool]


def test_cancelling_a_transfer_releases_the_reserved_stock(registry: ToolRegistry,
                                                           enterprise: Enterprise) -> None:
    args = VALID["erp.create_stock_transfer"]
    (before,) = enterprise.rows("inventory", sku=args["sku"], site=args["from_site"])
    done = registry.call("erp.create_stock_transfer", args, idempotency_key="do")
    (reserved,) = enterprise.rows("inventory", sku=args["sku"], site=args["from_site"])
    assert reserved["reserved"] == before["reserved"] + args["quantity"]
    assert reserved["on_hand"] == before["on_hand"]

    compensate(registry, done, "undo")
    compensate(registry, done, "undo-again")  # released once, not twice
    (after,) = enterprise.rows("inventory", sku=args["sku"], site=args["from_site"])
    assert after == before


def test_compensating_an_unknown_record_fails_for_good(registry: ToolRegistry) -> None:
    with pytest.raises(ToolCallError, match="unknown credit 'CRD-NOPE'") as caught:
        registry.call("finance.void_credit", {"credit_id": "CRD-NOPE", "reason": "compensated"},
                      idempotency_key="k")
    assert not caught.value.retryable


@pytest.mark.parametrize("tool", COMPENSATED)
def test_compensation_spec_fits_the_compensating_tool(registry: ToolRegistry, tool: str) -> None:
    spec = registry.spec(tool).compensation
    assert spec is not None
    compensating = registry.spec(spec.tool)
    assert compensating.function == registry.spec(tool).function
    assert compensating.side_effects and compensating.compensation is None
    assert set(spec.arguments_from_result) | set(spec.fixed_arguments) == set(
        compensating.parameters["required"])


def test_notifications_cannot_be_compensated(registry: ToolRegistry) -> None:
    assert registry.spec("notify.send").compensation is None
