"""Notification tool: queue an email or a Slack message in the outbox. Function
``operations``. A message cannot be unsent, so it has no compensation.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from decisionops.agent.models import Risk
from decisionops.tools._base import Body, EnterpriseTool, Subject, ToolArgs, ToolDefinition, build_tool
from decisionops.tools.enterprise import EffectContext, Enterprise
from decisionops.tools.enterprise.schema import outbox

__all__ = ["TOOLS", "SendArgs", "build_tools"]

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SLACK_CHANNEL = re.compile(r"^#[a-z0-9][a-z0-9._-]{0,79}$")


class SendArgs(ToolArgs):
    channel: Literal["email", "slack"]
    to: str = Field(min_length=2, max_length=200,
                    description="An email address for email, a #channel for slack.")
    subject: Subject
    body: Body

    @field_validator("to")
    @classmethod
    def _recipient_fits_channel(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        if channel == "email" and not _EMAIL.match(value):
            raise ValueError("must be an email address for channel email")
        if channel == "slack" and not _SLACK_CHANNEL.match(value):
            raise ValueError("must be a #channel (lowercase) for channel slack")
        return value


def _send(ctx: EffectContext, args: SendArgs) -> dict[str, Any]:
    message_id = ctx.new_id("MSG")
    ctx.conn.execute(outbox.insert(), dict(
        message_id=message_id, channel=args.channel, recipient=args.to, subject=args.subject,
        body=args.body, status="queued", created_at=ctx.timestamp()))
    return {"message_id": message_id, "channel": args.channel, "to": args.to,
            "status": "queued"}


TOOLS = (
    ToolDefinition(
        "notify.send", "Send an email or a Slack message (cannot be unsent).", SendArgs,
        "operations", Risk.LOW, effect=_send,
        # An internal message: where it goes is bound by the approval, and names no
        # entity a prediction is about.
        targets=("channel", "to"), qualifiers=("channel", "to")),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
