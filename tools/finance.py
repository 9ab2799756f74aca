"""Finance tools: issue and void account credits. Function ``finance``.

A credit must be in the account's billing currency.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import Connection, bindparam, func, select

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
from decisionops.tools.enterprise.schema import accounts, credits

__all__ = ["TOOLS", "IssueCreditArgs", "VoidCreditArgs", "build_tools"]


def _cents(value: float) -> float:
    return round(value, 2)


def _amount(value: float) -> float:
    """A credit amount in cents; a positive amount below half a cent is refused here,
    after the rounding, not executed as 0.00 after it was approved."""
    cents = _cents(value)
    if cents <= 0:
        raise ValueError(f"{value} rounds to 0.00; the smallest amount is 0.01")
    return cents


class IssueCreditArgs(ToolArgs):
    account_id: EntityId = Field(description="CRM account id, e.g. ACC-10023.")
    amount: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False,
                                   description="Credit amount, rounded to cents."),
                      AfterValidator(_amount)]
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")
    reason: Reason


class VoidCreditArgs(ToolArgs):
    credit_id: EntityId
    reason: Reason


def _issue_credit(ctx: EffectContext, args: IssueCreditArgs) -> dict[str, Any]:
    account = require(ctx.conn, accounts, args.account_id, "account")
    if account["currency"] != args.currency:
        raise ToolCallError(f"account {args.account_id!r} is billed in {account['currency']}, "
                            f"not {args.currency}", retryable=False, reference=args.account_id)
    credit_id = ctx.new_id("CRD")
    ctx.conn.execute(credits.insert(), dict(
        credit_id=credit_id, account_id=args.account_id, amount=args.amount,
        currency=args.currency, reason=args.reason, status="issued", created_at=ctx.timestamp()))
    return {"credit_id": credit_id, "account_id": args.account_id, "amount": args.amount,
            "currency": args.currency, "status": "issued"}


_ISSUED = (select(func.coalesce(func.sum(credits.c.amount), 0.0), func.count())
           .where(credits.c.account_id == bindparam("account"), credits.c.status == "issued"))
"""An account's issued credits (total, how many), built once: every preview reads it."""


def _preview_credit(conn: Connection, args: IssueCreditArgs) -> dict[str, Any]:
    """The account's issued credits now and after this one, against its ARR."""
    account = require(conn, accounts, args.account_id, "account")
    issued, count = conn.execute(_ISSUED, {"account": args.account_id}).one()
    issued = _cents(float(issued))
    return {"before": {"credits_issued": issued, "credits": count, "arr": account["arr"],
                       "currency": account["currency"]},
            "after": {"credits_issued": _cents(issued + args.amount), "credits": count + 1,
                      "share_of_arr": round((issued + args.amount) / account["arr"], 4)
                      if account["arr"] else None},
            "summary": (f"{args.account_id}: issued credits {issued:,.2f} → "
                        f"{issued + args.amount:,.2f} {account['currency']} "
                        f"(ARR {account['arr']:,.0f})")}


def _void_credit(ctx: EffectContext, args: VoidCreditArgs) -> dict[str, Any]:
    return set_status(ctx, credits, args.credit_id, "credit", to="voided", reason=args.reason,
                      allowed_from=("issued",))


TOOLS = (
    ToolDefinition(
        "finance.issue_credit", "Issue a credit note to an account, in its billing currency.",
        IssueCreditArgs, "finance", Risk.MEDIUM, effect=_issue_credit,
        compensation=compensated_by("finance.void_credit", credit_id="credit_id"),
        targets=("account_id", "currency"),
        # The credit is in the account's billing currency, or it cannot be issued.
        lookups=(looked_up_by("crm.get_account", account_id="account_id",
                              matches={"currency": "currency"}),),
        # Any credit issued to the account since the approver looked changes the picture.
        preview=PreviewSpec(tool="finance.preview_credit",
                            watch=("before.credits_issued", "before.currency"))),
    ToolDefinition(
        "finance.preview_credit", "What issuing a credit would change: the account's issued "
        "credits now and after, against its ARR. Reads only.", IssueCreditArgs, "finance",
        Risk.LOW, query=_preview_credit, targets=("account_id", "currency")),
    ToolDefinition(
        "finance.void_credit", "Void an issued credit note.", VoidCreditArgs, "finance",
        Risk.LOW, effect=_void_credit, targets=("credit_id",)),
)


def build_tools(enterprise: Enterprise) -> list[EnterpriseTool]:
    return [build_tool(enterprise, definition) for definition in TOOLS]
