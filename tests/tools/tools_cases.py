"""Shared cases for the tool tests: a fixed clock and valid calls of every tool.

Imported as ``tests.tools.tools_cases`` (pytest puts the project root on the path).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["CREATED_IN", "NOW", "READS", "VALID", "FixedClock"]

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


VALID: dict[str, dict[str, Any]] = {
    "crm.create_retention_offer": {"account_id": "ACC-10001", "offer_type": "discount",
                                   "discount_pct": 15, "duration_months": 6,
                                   "note": "churn risk 81%"},
    "crm.create_task": {"account_id": "ACC-10001", "owner_role": "account_manager",
                        "subject": "Call about the offer", "due_in_days": 3},
    "support.open_ticket": {"account_id": "ACC-10001", "priority": "high",
                            "subject": "Proactive review", "body": "Please review."},
    "finance.issue_credit": {"account_id": "ACC-10001", "amount": 150.0, "currency": "EUR",
                             "reason": "Goodwill"},
    "erp.create_stock_transfer": {"sku": "SKU-88412", "from_site": "DC-LYON",
                                  "to_site": "DC-MILAN", "quantity": 25},
    "erp.create_purchase_order": {"sku": "SKU-88412", "site": "DC-MILAN", "quantity": 40},
    "maintenance.create_work_order": {"asset_id": "AST-CMP-0003", "priority": "high",
                                      "description": "Inspect bearings",
                                      "due_within_hours": 48},
    "operations.schedule_downtime": {"asset_id": "AST-CMP-0003", "start_in_hours": 24,
                                     "duration_hours": 8, "reason": "Preventive repair"},
    "notify.send": {"channel": "slack", "to": "#sales-ops", "subject": "Heads-up",
                    "body": "Possible stock-out."},
}
"""A valid call of every tool that creates something."""

READS: dict[str, dict[str, Any]] = {
    "crm.get_account": {"account_id": "ACC-10004"},
    "erp.get_inventory": {"sku": "SKU-88412"},
    "erp.get_stock": {"sku": "SKU-88412", "site": "DC-ROTTERDAM"},
    "maintenance.get_asset": {"asset_id": "AST-CMP-0003"},
}

CREATED_IN = {
    "crm.create_retention_offer": "retention_offers", "crm.create_task": "tasks",
    "support.open_ticket": "tickets", "finance.issue_credit": "credits",
    "erp.create_stock_transfer": "stock_transfers", "erp.create_purchase_order": "purchase_orders",
    "maintenance.create_work_order": "work_orders", "operations.schedule_downtime": "downtimes",
    "notify.send": "outbox",
}
