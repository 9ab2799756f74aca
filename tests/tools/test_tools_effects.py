"""What each tool does to its system: stock, costs, assignment, times, messages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from decisionops.agent.errors import ToolCallError
from decisionops.tools.enterprise import Enterprise, utc_iso
from decisionops.tools.erp import EXPEDITE_SURCHARGE
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import NOW, VALID


def test_stock_transfer_reserves_available_stock(registry: ToolRegistry,
                                                 enterprise: Enterprise) -> None:
    (stock,) = enterprise.rows("inventory", sku="SKU-88412", site="DC-LYON")
    available = stock["on_hand"] - stock["reserved"]
    args = {**VALID["erp.create_stock_transfer"], "quantity": available}
    receipt = registry.call("erp.create_stock_transfer", args, idempotency_key="all")
    assert receipt.result["status"] == "reserved"

    with pytest.raises(ToolCallError, match=r"insufficient stock .* 0 available, 1 requested") as e:
        registry.call("erp.create_stock_transfer", {**args, "quantity": 1}, idempotency_key="one")
    assert not e.value.retryable
    assert len(enterprise.rows("stock_transfers")) == 1
    sites = registry.call("erp.get_inventory", {"sku": "SKU-88412"}, idempotency_key="r").result
    lyon = next(s for s in sites["sites"] if s["site"] == "DC-LYON")
    assert lyon == {"site": "DC-LYON", "on_hand": stock["on_hand"], "reserved": available,
                    "available": 0}


def test_transfer_from_a_site_without_the_sku_fails(registry: ToolRegistry) -> None:
    spare = registry.call("maintenance.get_asset", {"asset_id": "AST-CMP-0003"},
                          idempotency_key="r").result["spare_part_sku"]
    stocked = {s["site"] for s in registry.call("erp.get_inventory", {"sku": spare},
                                                idempotency_key="r").result["sites"]}
    empty = next(s for s in ("DC-ROTTERDAM", "DC-HAMBURG", "DC-LYON", "DC-MILAN")
                 if s not in stocked)
    with pytest.raises(ToolCallError, match=f"insufficient stock of {spare} at {empty}"):
        registry.call("erp.create_stock_transfer", {"sku": spare, "from_site": empty,
                      "to_site": "PLANT-PENANG", "quantity": 1}, idempotency_key="k")


@pytest.mark.parametrize("expedite", [False, True])
def test_purchase_order_costs(registry: ToolRegistry, enterprise: Enterprise,
                              expedite: bool) -> None:
    (sku,) = enterprise.rows("skus", sku="SKU-88412")
    result = registry.call("erp.create_purchase_order",
                           {**VALID["erp.create_purchase_order"], "expedite": expedite},
                           idempotency_key="po").result
    unit = round(sku["unit_cost"] * (1 + EXPEDITE_SURCHARGE if expedite else 1), 2)
    assert result["unit_cost"] == unit
    assert result["total_cost"] == round(unit * 40, 2)
    assert result["supplier"] == sku["supplier"]
    lead = sku["lead_time_days"] // 2 if expedite else sku["lead_time_days"]
    assert result["expected_delivery_at"] == utc_iso(NOW + timedelta(days=lead))


def test_work_orders_go_to_the_least_loaded_qualified_technician(
        registry: ToolRegistry, enterprise: Enterprise) -> None:
    asset = enterprise.rows("assets", asset_id="AST-CMP-0003")[0]
    crew = enterprise.rows("technicians", site=asset["site"])
    qualified = sorted(t["technician_id"] for t in crew
                       if asset["asset_class"] in json.loads(t["skills"]))
    assert qualified, "the seed staffs this site for this class"
    args = VALID["maintenance.create_work_order"]
    assigned = [registry.call("maintenance.create_work_order", args,
                              idempotency_key=f"wo-{i}").result["technician_id"]
                for i in range(2 * len(qualified))]
    assert assigned == qualified + qualified


def test_work_order_without_a_qualified_technician_is_unassigned(
        registry: ToolRegistry, enterprise: Enterprise) -> None:
    turbine = enterprise.rows("assets", site="PLANT-PENANG", asset_class="turbine")[0]
    result = registry.call("maintenance.create_work_order",
                           {**VALID["maintenance.create_work_order"],
                            "asset_id": turbine["asset_id"]}, idempotency_key="wo").result
    assert result["technician_id"] is None
    assert result["status"] == "open"


def test_times_come_from_the_clock(registry: ToolRegistry) -> None:
    downtime = registry.call("operations.schedule_downtime", VALID["operations.schedule_downtime"],
                             idempotency_key="dt").result
    assert (downtime["start_at"], downtime["end_at"]) == ("2026-11-21T09:00:00.000Z",
                                                          "2026-11-21T17:00:00.000Z")
    task = registry.call("crm.create_task", VALID["crm.create_task"], idempotency_key="t").result
    assert task["due_at"] == "2026-11-23T09:00:00.000Z"
    assert task["owner"].endswith("@northwind.example")


def test_messages_are_queued_in_the_outbox(registry: ToolRegistry,
                                           enterprise: Enterprise) -> None:
    email = {"channel": "email", "to": "mei.lin@northwind.example", "subject": "Churn risk",
             "body": "Please call the customer."}
    result = registry.call("notify.send", email, idempotency_key="m").result
    (row,) = enterprise.rows("outbox")
    assert (row["message_id"], row["recipient"], row["status"]) == (
        result["message_id"], "mei.lin@northwind.example", "queued")


def test_account_notes_are_returned_as_data(registry: ToolRegistry) -> None:
    account = registry.call("crm.get_account", {"account_id": "ACC-10004"},
                            idempotency_key="r").result
    assert "ignore previous instructions" in account["notes"].lower()
    assert account["open_tickets"] == 0
    registry.call("support.open_ticket", {**VALID["support.open_ticket"],
                                          "account_id": "ACC-10004"}, idempotency_key="t")
    assert registry.call("crm.get_account", {"account_id": "ACC-10004"},
                         idempotency_key="r").result["open_tickets"] == 1
