"""Support tools: open and close customer tickets. Function ``support``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from decisionops.agent.models import Risk
from decisionops.tools._base import (
    Body,
    EnterpriseTool,
    EntityId,
    Subject,
    ToolArgs,
    ToolDefinition,
    build_tool,
    compensated_by,
    looked_up_by,
    require,
    set_status,
)
from decisionops.tools.enterprise import EffectContext, Enterprise
from decisionops.tools.enterprise.schema import accounts, tickets

__all__ = ["TOOLS", "CloseTicketArgs", "OpenTicketArgs", "build_tools"]


class OpenTicketArgs(ToolArgs):
    account_id: EntityId = Field(description="CRM account id, e.g. ACC-10023.")
    priority: Literal["low", "normal", "high", "urgent"]
    subject: Subject
    body: Body


class CloseTicketArgs(ToolArgs):
    ticket_id: EntityId
    resolution: str = Field(min_length=1, max_length=2000)


def _open_ticket(ctx: EffectContext, args: OpenTicketArgs) -> dict[str, Any]:
    require(ctx.conn, accounts, args.account_id, "account")
    ticket_id = ctx.new_id("TCK")
    ctx.conn.execute(tickets.insert(), dict(
        ticket_id=ticket_id, account_id=args.account_id, priority=args.priority,
        subject=args.subject, body=args.body, status="open", created_at=ctx.timestamp()))
    return {"ticket_id": ticket_id, "account_id": args.account_id, "priority": args.priority,
            "status": "open"}


def _close_ticket(ctx: EffectContext, args: CloseTicketArgs) -> dict[str, Any]:
    return set_status(ctx, tickets, args.ticket_id, "ticket", to="closed",
                      reason=args.resolution, allowed_from=("open",))


TOOLS = (
    ToolDefinition(
        "support.open_ticket", "Open a support ticket on an account (e.g. a proactive "
        "health check).", OpenTicketArgs, "support", Risk.LOW, effect=_open_ticket,
        compensation=compensated_by("support.close_ticket", reason_field="resolution",
                                    ticket_id="ticket_id"),
        targets=("account_id",),
        lookups=(looked_up_by("crm.get_account", account_id="account_id"),)),
    ToolDefinition(
        "support.close_ticket", "Close a support ticket with a resolution.", CloseTicketArgs,
        "support", Risk.LOW, effect=_close_ticket, targets=("ticket_id",)),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
