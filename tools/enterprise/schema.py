"""Tables of the reference enterprise: one SQLite file, one ``MetaData``.

The business systems (CRM, support, finance, ERP, maintenance, operations,
notifications) plus two technical tables: ``tool_calls`` (one row per idempotency key,
written in the same transaction as the business effect) and ``faults`` (injected
failures, persisted so they apply across processes). Times are ISO-8601 UTC strings
ending in ``Z``; money is a float rounded to cents. Behaviour lives in
``tools.enterprise`` and the tool modules, not here.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "SCHEMA_VERSION",
    "accounts",
    "assets",
    "credits",
    "downtimes",
    "faults",
    "inventory",
    "meta",
    "metadata",
    "outbox",
    "purchase_orders",
    "retention_offers",
    "sites",
    "skus",
    "stock_transfers",
    "tasks",
    "technicians",
    "tickets",
    "tool_calls",
    "work_orders",
]

SCHEMA_VERSION = 1
"""Version of this schema; an enterprise file with another version is refused."""

metadata = MetaData()


def _id(name: str) -> Column:
    return Column(name, String(64), primary_key=True)


def _status(default: str) -> list[Column]:
    return [
        Column("status", String(32), nullable=False, default=default),
        Column("status_reason", Text, nullable=True),
        Column("created_at", String(32), nullable=False),
        Column("updated_at", String(32), nullable=True),
    ]


meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --------------------------------------------------------------------------- CRM

accounts = Table(
    "accounts", metadata,
    _id("account_id"),
    Column("name", String(200), nullable=False),
    Column("region", String(8), nullable=False),
    Column("segment", String(32), nullable=False),
    Column("plan", String(32), nullable=False),
    Column("arr", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("account_manager", String(200), nullable=False),
    Column("tenure_months", Integer, nullable=False),
    Column("notes", Text, nullable=False, default=""),
)

retention_offers = Table(
    "retention_offers", metadata,
    _id("offer_id"),
    Column("account_id", ForeignKey("accounts.account_id"), nullable=False),
    Column("offer_type", String(32), nullable=False),
    Column("discount_pct", Integer, nullable=False),
    Column("duration_months", Integer, nullable=False),
    Column("note", Text, nullable=False),
    *_status("proposed"),
)

tasks = Table(
    "tasks", metadata,
    _id("task_id"),
    Column("account_id", ForeignKey("accounts.account_id"), nullable=False),
    Column("owner_role", String(32), nullable=False),
    Column("owner", String(200), nullable=True),
    Column("subject", String(200), nullable=False),
    Column("due_at", String(32), nullable=False),
    *_status("open"),
)

# --------------------------------------------------------------------------- support, finance

tickets = Table(
    "tickets", metadata,
    _id("ticket_id"),
    Column("account_id", ForeignKey("accounts.account_id"), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    *_status("open"),
)

credits = Table(
    "credits", metadata,
    _id("credit_id"),
    Column("account_id", ForeignKey("accounts.account_id"), nullable=False),
    Column("amount", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", Text, nullable=False),
    *_status("issued"),
    CheckConstraint("amount > 0", name="credit_positive"),
)

# --------------------------------------------------------------------------- ERP

sites = Table(
    "sites", metadata,
    _id("site_id"),
    Column("kind", String(16), nullable=False),
    Column("region", String(8), nullable=False),
    Column("city", String(100), nullable=False),
)

skus = Table(
    "skus", metadata,
    _id("sku"),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("unit_cost", Float, nullable=False),
    Column("unit_price", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("supplier", String(200), nullable=False),
    Column("lead_time_days", Integer, nullable=False),
)

inventory = Table(
    "inventory", metadata,
    Column("sku", ForeignKey("skus.sku"), primary_key=True),
    Column("site", ForeignKey("sites.site_id"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, default=0),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
)

stock_transfers = Table(
    "stock_transfers", metadata,
    _id("transfer_id"),
    Column("sku", ForeignKey("skus.sku"), nullable=False),
    Column("from_site", ForeignKey("sites.site_id"), nullable=False),
    Column("to_site", ForeignKey("sites.site_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    *_status("reserved"),
)

purchase_orders = Table(
    "purchase_orders", metadata,
    _id("po_id"),
    Column("sku", ForeignKey("skus.sku"), nullable=False),
    Column("site", ForeignKey("sites.site_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("expedite", Boolean, nullable=False),
    Column("unit_cost", Float, nullable=False),
    Column("total_cost", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("supplier", String(200), nullable=False),
    *_status("open"),
)

# --------------------------------------------------------------------------- maintenance, ops

assets = Table(
    "assets", metadata,
    _id("asset_id"),
    Column("name", String(200), nullable=False),
    Column("site", ForeignKey("sites.site_id"), nullable=False),
    Column("asset_class", String(32), nullable=False),
    Column("criticality", String(16), nullable=False),
    Column("spare_part_sku", ForeignKey("skus.sku"), nullable=False),
    Column("downtime_cost_per_hour", Float, nullable=False),
    Column("installed_year", Integer, nullable=False),
)

technicians = Table(
    "technicians", metadata,
    _id("technician_id"),
    Column("name", String(200), nullable=False),
    Column("email", String(200), nullable=False),
    Column("site", ForeignKey("sites.site_id"), nullable=False),
    Column("skills", Text, nullable=False),  # JSON list of asset classes
)

work_orders = Table(
    "work_orders", metadata,
    _id("work_order_id"),
    Column("asset_id", ForeignKey("assets.asset_id"), nullable=False),
    Column("technician_id", ForeignKey("technicians.technician_id"), nullable=True),
    Column("priority", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("due_at", String(32), nullable=False),
    *_status("open"),
)

downtimes = Table(
    "downtimes", metadata,
    _id("downtime_id"),
    Column("asset_id", ForeignKey("assets.asset_id"), nullable=False),
    Column("owner", String(32), nullable=False, default="operations"),
    Column("start_at", String(32), nullable=False),
    Column("end_at", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    *_status("scheduled"),
)

# --------------------------------------------------------------------------- notifications

outbox = Table(
    "outbox", metadata,
    _id("message_id"),
    Column("channel", String(16), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    *_status("queued"),
)

# --------------------------------------------------------------------------- technical

tool_calls = Table(
    "tool_calls", metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("tool", String(80), nullable=False, index=True),
    Column("arguments_hash", String(64), nullable=False),
    Column("arguments_json", Text, nullable=False),
    Column("result_json", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)

faults = Table(
    "faults", metadata,
    Column("fault_id", Integer, primary_key=True, autoincrement=True),
    Column("tool", String(80), nullable=False, index=True),
    Column("mode", String(32), nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("delay_s", Float, nullable=False, default=0.0),
    Column("created_at", String(32), nullable=False),
)
