"""ERP tools: read inventory, reserve stock transfers between sites, raise purchase
orders, and cancel both. Function ``supply_chain``.

A transfer reserves stock at its source site (``reserved`` grows, ``on_hand`` stays)
and fails for good when the site lacks available stock; cancelling releases it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from sqlalchemy import Connection, select, update

from decisionops.agent.errors import ToolCallError
from decisionops.agent.models import Risk
from decisionops.agent.ports import PreviewSpec
from decisionops.tools._base import (
    EnterpriseTool,
    EntityId,
    Reason,
    ToolArgs,
    ToolDefinition,
    build_tool,
    compensated_by,
    looked_up_by,
    require,
    set_status,
)
from decisionops.tools.enterprise import EffectContext, Enterprise
from decisionops.tools.enterprise.schema import inventory, purchase_orders, sites, skus, stock_transfers

__all__ = [
    "EXPEDITE_SURCHARGE",
    "TOOLS",
    "CancelPurchaseOrderArgs",
    "CancelStockTransferArgs",
    "CreatePurchaseOrderArgs",
    "CreateStockTransferArgs",
    "GetInventoryArgs",
    "GetStockArgs",
    "build_tools",
]

EXPEDITE_SURCHARGE = 0.15
"""Expedited purchase orders cost this much more per unit and arrive in half the lead time."""

_SKU_HELP = "ERP item number, e.g. SKU-88412."
_SITE_HELP = "Site id, e.g. DC-ROTTERDAM or PLANT-GDANSK."


class GetInventoryArgs(ToolArgs):
    sku: EntityId = Field(description=_SKU_HELP)


class GetStockArgs(ToolArgs):
    sku: EntityId = Field(description=_SKU_HELP)
    site: EntityId = Field(description=_SITE_HELP)


class CreateStockTransferArgs(ToolArgs):
    sku: EntityId = Field(description=_SKU_HELP)
    from_site: EntityId = Field(description=_SITE_HELP)
    to_site: EntityId = Field(description=_SITE_HELP)
    quantity: int = Field(ge=1, le=100_000)

    @field_validator("to_site")
    @classmethod
    def _different_sites(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("from_site"):
            raise ValueError("must differ from from_site")
        return value


class CancelStockTransferArgs(ToolArgs):
    transfer_id: EntityId
    reason: Reason


class CreatePurchaseOrderArgs(ToolArgs):
    sku: EntityId = Field(description=_SKU_HELP)
    site: EntityId = Field(description="Delivery site. " + _SITE_HELP)
    quantity: int = Field(ge=1, le=1_000_000)
    expedite: bool = Field(default=False, description="Faster delivery at a unit surcharge.")


class CancelPurchaseOrderArgs(ToolArgs):
    po_id: EntityId
    reason: Reason


def _get_inventory(conn: Connection, args: GetInventoryArgs) -> dict[str, Any]:
    item = require(conn, skus, args.sku, "sku")
    rows = conn.execute(select(inventory).where(inventory.c.sku == args.sku)
                        .order_by(inventory.c.site)).mappings()
    return {**item, "sites": [
        {"site": r["site"], "on_hand": r["on_hand"], "reserved": r["reserved"],
         "available": r["on_hand"] - r["reserved"]} for r in rows]}


def _get_stock(conn: Connection, args: GetStockArgs) -> dict[str, Any]:
    require(conn, skus, args.sku, "sku")
    require(conn, sites, args.site, "site")
    row = conn.execute(select(inventory).where(
        (inventory.c.sku == args.sku) & (inventory.c.site == args.site))).mappings().first()
    on_hand, reserved = (row["on_hand"], row["reserved"]) if row else (0, 0)
    return {"sku": args.sku, "site": args.site, "on_hand": on_hand, "reserved": reserved,
            "available": on_hand - reserved}


def _create_stock_transfer(ctx: EffectContext, args: CreateStockTransferArgs) -> dict[str, Any]:
    require(ctx.conn, skus, args.sku, "sku")
    require(ctx.conn, sites, args.from_site, "site")
    require(ctx.conn, sites, args.to_site, "site")
    where = (inventory.c.sku == args.sku) & (inventory.c.site == args.from_site)
    reserved = ctx.conn.execute(update(inventory).where(
        where & (inventory.c.on_hand - inventory.c.reserved >= args.quantity)
    ).values(reserved=inventory.c.reserved + args.quantity))
    if reserved.rowcount != 1:
        stock = ctx.conn.execute(select(inventory).where(where)).mappings().first()
        available = stock["on_hand"] - stock["reserved"] if stock else 0
        raise ToolCallError(
            f"insufficient stock of {args.sku} at {args.from_site}: {available} available, "
            f"{args.quantity} requested", retryable=False, reference=args.sku,
            available=available)
    transfer_id = ctx.new_id("TRF")
    ctx.conn.execute(stock_transfers.insert(), dict(
        transfer_id=transfer_id, sku=args.sku, from_site=args.from_site, to_site=args.to_site,
        quantity=args.quantity, status="reserved", created_at=ctx.timestamp()))
    return {"transfer_id": transfer_id, "sku": args.sku, "from_site": args.from_site,
            "to_site": args.to_site, "quantity": args.quantity, "status": "reserved"}


def _preview_transfer(conn: Connection, args: CreateStockTransferArgs) -> dict[str, Any]:
    """Stock available at the source and on hand at the destination, now and after."""
    require(conn, skus, args.sku, "sku")

    def level(site: str) -> tuple[int, int]:
        row = conn.execute(select(inventory).where(
            (inventory.c.sku == args.sku) & (inventory.c.site == site))).mappings().first()
        return (row["on_hand"], row["reserved"]) if row else (0, 0)

    src_on_hand, src_reserved = level(args.from_site)
    dst_on_hand, _ = level(args.to_site)
    available = src_on_hand - src_reserved
    return {"before": {"source_available": available, "destination_on_hand": dst_on_hand},
            "after": {"source_available": available - args.quantity,
                      "destination_on_hand": dst_on_hand + args.quantity,
                      "enough_stock": available >= args.quantity},
            "summary": (f"{args.sku}: {args.from_site} available {available} → "
                        f"{available - args.quantity}; {args.to_site} on hand {dst_on_hand} → "
                        f"{dst_on_hand + args.quantity} on arrival")}


def _cancel_stock_transfer(ctx: EffectContext, args: CancelStockTransferArgs) -> dict[str, Any]:
    result = set_status(ctx, stock_transfers, args.transfer_id, "stock transfer",
                        to="cancelled", reason=args.reason, allowed_from=("reserved",))
    if result["previous_status"] == "reserved":
        transfer = require(ctx.conn, stock_transfers, args.transfer_id, "stock transfer")
        ctx.conn.execute(update(inventory).where(
            (inventory.c.sku == transfer["sku"]) & (inventory.c.site == transfer["from_site"])
        ).values(reserved=inventory.c.reserved - transfer["quantity"]))
    return result


def _create_purchase_order(ctx: EffectContext, args: CreatePurchaseOrderArgs) -> dict[str, Any]:
    item = require(ctx.conn, skus, args.sku, "sku")
    require(ctx.conn, sites, args.site, "site")
    factor = 1 + EXPEDITE_SURCHARGE if args.expedite else 1.0
    unit_cost = round(item["unit_cost"] * factor, 2)
    total_cost = round(unit_cost * args.quantity, 2)
    lead_days = max(1, item["lead_time_days"] // 2) if args.expedite else item["lead_time_days"]
    po_id = ctx.new_id("PO")
    ctx.conn.execute(purchase_orders.insert(), dict(
        po_id=po_id, sku=args.sku, site=args.site, quantity=args.quantity,
        expedite=args.expedite, unit_cost=unit_cost, total_cost=total_cost,
        currency=item["currency"], supplier=item["supplier"], status="open",
        created_at=ctx.timestamp()))
    return {"po_id": po_id, "sku": args.sku, "site": args.site, "quantity": args.quantity,
            "unit_cost": unit_cost, "total_cost": total_cost, "currency": item["currency"],
            "supplier": item["supplier"],
            "expected_delivery_at": ctx.timestamp(timedelta(days=lead_days)), "status": "open"}


def _cancel_purchase_order(ctx: EffectContext, args: CancelPurchaseOrderArgs) -> dict[str, Any]:
    return set_status(ctx, purchase_orders, args.po_id, "purchase order", to="cancelled",
                      reason=args.reason, allowed_from=("open",))


_SKU = looked_up_by("erp.get_inventory", sku="sku")
_SOURCE_STOCK = looked_up_by("erp.get_stock", sku="sku", site="from_site",
                             at_least={"available": "quantity"})
"""A transfer asks for no more than its source has available, or no one is asked."""

TOOLS = (
    ToolDefinition(
        "erp.get_inventory", "Read stock of one SKU at every site (on hand, reserved, "
        "available), with its unit cost and supplier.", GetInventoryArgs, "supply_chain",
        Risk.LOW, query=_get_inventory, targets=("sku",)),
    ToolDefinition(
        "erp.get_stock", "Read stock of one SKU at one site (on hand, reserved, available).",
        GetStockArgs, "supply_chain", Risk.LOW, query=_get_stock, targets=("sku", "site")),
    ToolDefinition(
        "erp.create_stock_transfer", "Reserve stock at one site for transfer to another. "
        "Fails if the source site lacks available stock.", CreateStockTransferArgs,
        "supply_chain", Risk.MEDIUM, effect=_create_stock_transfer,
        compensation=compensated_by("erp.cancel_stock_transfer", transfer_id="transfer_id"),
        targets=("sku", "from_site", "to_site"), lookups=(_SKU, _SOURCE_STOCK),
        # Stock that moved by more than a tenth since the approver looked: ask again.
        preview=PreviewSpec(tool="erp.preview_transfer", watch=("before.source_available",),
                            tolerance=0.1)),
    ToolDefinition(
        "erp.preview_transfer", "What a stock transfer would change: stock available at the "
        "source and on hand at the destination, now and after. Reads only.",
        CreateStockTransferArgs, "supply_chain", Risk.LOW, query=_preview_transfer,
        targets=("sku", "from_site", "to_site")),
    ToolDefinition(
        "erp.cancel_stock_transfer", "Cancel a stock transfer and release its reservation.",
        CancelStockTransferArgs, "supply_chain", Risk.LOW, effect=_cancel_stock_transfer,
        targets=("transfer_id",)),
    ToolDefinition(
        "erp.create_purchase_order", "Order a SKU from its supplier for delivery to a site, "
        "optionally expedited at a surcharge.", CreatePurchaseOrderArgs, "supply_chain",
        Risk.MEDIUM, effect=_create_purchase_order,
        compensation=compensated_by("erp.cancel_purchase_order", po_id="po_id"),
        targets=("sku", "site"), lookups=(_SKU,)),
    ToolDefinition(
        "erp.cancel_purchase_order", "Cancel an open purchase order.", CancelPurchaseOrderArgs,
        "supply_chain", Risk.LOW, effect=_cancel_purchase_order, targets=("po_id",)),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
