"""Maintenance tools: read an asset, create and cancel work orders. Function ``maintenance``.

A new work order goes to a technician at the asset's site who has the asset class as a
skill and the fewest open orders (ties by technician id); none qualified: unassigned.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import Connection, func, select

from decisionops.agent.models import Risk
from decisionops.tools._base import (
    EnterpriseTool,
    EntityId,
    Reason,
    ToolArgs,
    ToolDefinition,
    build_tool,
    compensated_by,
    count_with_status,
    looked_up_by,
    require,
    set_status,
)
from decisionops.tools.enterprise import EffectContext, Enterprise
from decisionops.tools.enterprise.schema import assets, downtimes, inventory, technicians, work_orders

__all__ = [
    "TOOLS",
    "CancelWorkOrderArgs",
    "CreateWorkOrderArgs",
    "GetAssetArgs",
    "build_tools",
]

_ASSET_HELP = "Asset id, e.g. AST-PMP-0042."


class GetAssetArgs(ToolArgs):
    asset_id: EntityId = Field(description=_ASSET_HELP)


class CreateWorkOrderArgs(ToolArgs):
    asset_id: EntityId = Field(description=_ASSET_HELP)
    priority: Literal["low", "normal", "high", "emergency"]
    description: str = Field(min_length=1, max_length=2000)
    due_within_hours: int = Field(ge=1, le=720)


class CancelWorkOrderArgs(ToolArgs):
    work_order_id: EntityId
    reason: Reason


def _get_asset(conn: Connection, args: GetAssetArgs) -> dict[str, Any]:
    asset = require(conn, assets, args.asset_id, "asset")
    open_orders = count_with_status(conn, work_orders, "asset_id", args.asset_id, "open")
    windows = conn.execute(select(downtimes.c.downtime_id, downtimes.c.start_at,
                                  downtimes.c.end_at).where(
        (downtimes.c.asset_id == args.asset_id) & (downtimes.c.status == "scheduled"))
        .order_by(downtimes.c.start_at)).mappings()
    spare = conn.execute(select(inventory.c.on_hand - inventory.c.reserved).where(
        (inventory.c.sku == asset["spare_part_sku"]) & (inventory.c.site == asset["site"]))
    ).scalar()
    return {**asset, "open_work_orders": open_orders,
            "scheduled_downtime": [dict(w) for w in windows],
            "spare_part_available_on_site": spare or 0}


def _assignee(conn: Connection, site: str, asset_class: str) -> str | None:
    crew = conn.execute(select(technicians.c.technician_id, technicians.c.skills)
                        .where(technicians.c.site == site)).all()
    qualified = [tid for tid, skills in crew if asset_class in json.loads(skills)]
    if not qualified:
        return None
    load = dict(conn.execute(
        select(work_orders.c.technician_id, func.count())
        .where(work_orders.c.technician_id.in_(qualified) & (work_orders.c.status == "open"))
        .group_by(work_orders.c.technician_id)).all())
    return min(qualified, key=lambda tid: (load.get(tid, 0), tid))


def _create_work_order(ctx: EffectContext, args: CreateWorkOrderArgs) -> dict[str, Any]:
    asset = require(ctx.conn, assets, args.asset_id, "asset")
    technician_id = _assignee(ctx.conn, asset["site"], asset["asset_class"])
    work_order_id = ctx.new_id("WO")
    due_at = ctx.timestamp(timedelta(hours=args.due_within_hours))
    ctx.conn.execute(work_orders.insert(), dict(
        work_order_id=work_order_id, asset_id=args.asset_id, technician_id=technician_id,
        priority=args.priority, description=args.description, due_at=due_at, status="open",
        created_at=ctx.timestamp()))
    return {"work_order_id": work_order_id, "asset_id": args.asset_id,
            "technician_id": technician_id, "priority": args.priority, "due_at": due_at,
            "status": "open"}


def _cancel_work_order(ctx: EffectContext, args: CancelWorkOrderArgs) -> dict[str, Any]:
    return set_status(ctx, work_orders, args.work_order_id, "work order", to="cancelled",
                      reason=args.reason, allowed_from=("open",))


TOOLS = (
    ToolDefinition(
        "maintenance.get_asset", "Read an asset: site, class, criticality, downtime cost, "
        "open work orders, scheduled downtime and spare parts on site.", GetAssetArgs,
        "maintenance", Risk.LOW, query=_get_asset, targets=("asset_id",)),
    ToolDefinition(
        "maintenance.create_work_order", "Create a work order on an asset; it is assigned to "
        "a qualified technician at the asset's site when one exists.", CreateWorkOrderArgs,
        "maintenance", Risk.MEDIUM, effect=_create_work_order,
        compensation=compensated_by("maintenance.cancel_work_order",
                                    work_order_id="work_order_id"),
        targets=("asset_id",),
        lookups=(looked_up_by("maintenance.get_asset", asset_id="asset_id"),)),
    ToolDefinition(
        "maintenance.cancel_work_order", "Cancel an open work order.", CancelWorkOrderArgs,
        "maintenance", Risk.LOW, effect=_cancel_work_order, targets=("work_order_id",)),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
