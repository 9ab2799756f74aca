"""Operations tools: schedule and cancel planned downtime windows on assets.
Function ``operations`` (operations owns production time, maintenance does the work).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, select

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
from decisionops.tools.enterprise.schema import assets, downtimes

__all__ = ["TOOLS", "CancelDowntimeArgs", "ScheduleDowntimeArgs", "build_tools"]


class ScheduleDowntimeArgs(ToolArgs):
    asset_id: EntityId = Field(description="Asset id, e.g. AST-PMP-0042.")
    start_in_hours: int = Field(ge=0, le=720)
    duration_hours: int = Field(ge=1, le=72)
    reason: Reason


class CancelDowntimeArgs(ToolArgs):
    downtime_id: EntityId
    reason: Reason


def _schedule_downtime(ctx: EffectContext, args: ScheduleDowntimeArgs) -> dict[str, Any]:
    require(ctx.conn, assets, args.asset_id, "asset")
    start = timedelta(hours=args.start_in_hours)
    start_at = ctx.timestamp(start)
    end_at = ctx.timestamp(start + timedelta(hours=args.duration_hours))
    downtime_id = ctx.new_id("DT")
    ctx.conn.execute(downtimes.insert(), dict(
        downtime_id=downtime_id, asset_id=args.asset_id, owner="operations", start_at=start_at,
        end_at=end_at, reason=args.reason, status="scheduled", created_at=ctx.timestamp()))
    return {"downtime_id": downtime_id, "asset_id": args.asset_id, "start_at": start_at,
            "end_at": end_at, "status": "scheduled"}


def _preview_downtime(conn: Connection, args: ScheduleDowntimeArgs) -> dict[str, Any]:
    """The asset's scheduled downtime windows now, and with this one."""
    require(conn, assets, args.asset_id, "asset")
    scheduled = [{"downtime_id": r.downtime_id, "start_at": r.start_at, "end_at": r.end_at}
                 for r in conn.execute(select(downtimes).where(
                     downtimes.c.asset_id == args.asset_id, downtimes.c.status == "scheduled")
                     .order_by(downtimes.c.start_at))]
    return {"before": {"scheduled_windows": len(scheduled), "windows": scheduled[:10]},
            "after": {"scheduled_windows": len(scheduled) + 1,
                      "new_window": {"starts_in_hours": args.start_in_hours,
                                     "duration_hours": args.duration_hours}},
            "summary": (f"{args.asset_id}: {len(scheduled)} scheduled downtime window(s) → "
                        f"{len(scheduled) + 1} ({args.duration_hours} h in "
                        f"{args.start_in_hours} h)")}


def _cancel_downtime(ctx: EffectContext, args: CancelDowntimeArgs) -> dict[str, Any]:
    return set_status(ctx, downtimes, args.downtime_id, "downtime", to="cancelled",
                      reason=args.reason, allowed_from=("scheduled",))


TOOLS = (
    ToolDefinition(
        "operations.schedule_downtime", "Schedule a planned downtime window for an asset.",
        ScheduleDowntimeArgs, "operations", Risk.MEDIUM, effect=_schedule_downtime,
        compensation=compensated_by("operations.cancel_downtime", downtime_id="downtime_id"),
        targets=("asset_id",),
        lookups=(looked_up_by("maintenance.get_asset", asset_id="asset_id"),),
        preview=PreviewSpec(tool="operations.preview_downtime",
                            watch=("before.scheduled_windows",))),
    ToolDefinition(
        "operations.preview_downtime", "What scheduling a downtime would change: the asset's "
        "scheduled windows now and with the new one. Reads only.", ScheduleDowntimeArgs,
        "operations", Risk.LOW, query=_preview_downtime, targets=("asset_id",)),
    ToolDefinition(
        "operations.cancel_downtime", "Cancel a scheduled downtime window.", CancelDowntimeArgs,
        "operations", Risk.LOW, effect=_cancel_downtime, targets=("downtime_id",)),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
