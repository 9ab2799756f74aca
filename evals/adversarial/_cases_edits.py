"""Finding 1: an approver's edit that changes what a step acts on (the account, the
currency, the asset, the site, the SKU, the recipient), in the service, the HITL
endpoint and the web inbox; and arguments changed in the database after approval."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from decisionops.agent.errors import InvalidInputError, LockedArgumentError
from decisionops.agent.models import Approve, Edit
from decisionops.agent.store import _tables as t
from decisionops.agent.store.ledger import verify
from decisionops.evals.adversarial._arena import Arena, predict
from decisionops.evals.adversarial._suite import CaseList, World

__all__ = ["CASES"]

CASES = CaseList()


def _churn(world: World) -> tuple[Arena, str]:
    arena = world()
    (decision,) = arena.ingest(predict("churn-1"))
    arena.start()
    return arena, decision


def _locked(arena: Arena, decision: str, function: str, step: str, change: dict[str, Any],
            *, by: str) -> None:
    row = arena.pending(decision)[function]
    arena.refused(lambda: arena.answer(row, Edit(arguments={step: change}), by=by),
                  error=LockedArgumentError)
    arena.check(arena.pending(decision)[function].id == row.id,
                "the request is no longer pending after a refused edit")


def _credit_paid_to_entity(arena: Arena, decision: str) -> None:
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    credits = arena.effects("finance.issue_credit")
    arena.check([(c["account_id"], c["currency"], c["amount"]) for c in credits]
                == [("ACC-10004", "EUR", 200)], f"credits: {credits}")


@CASES.add("edit-account", "edit-target", "finance edits a credit to pay another account")
def _edit_account(world: World) -> None:
    arena, decision = _churn(world)
    arena.taint("ACC-10001", "the account the edit redirected the credit to")
    _locked(arena, decision, "finance", "goodwill_credit", {"account_id": "ACC-10001"},
            by="dana@finance")
    _credit_paid_to_entity(arena, decision)


@CASES.add("edit-currency", "edit-target", "finance edits a credit's currency (and amount)")
def _edit_currency(world: World) -> None:
    arena, decision = _churn(world)
    arena.taint("USD", "the currency the edit switched to")
    _locked(arena, decision, "finance", "goodwill_credit", {"currency": "USD", "amount": 150},
            by="omar@finance")
    _credit_paid_to_entity(arena, decision)


@CASES.add("edit-other-function-step", "edit-target",
           "finance's approval edits the sales offer; an edit adds an argument the tool has not")
def _edit_other_step(world: World) -> None:
    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.taint(30, "the discount finance tried to set on sales' offer")
    arena.refused(lambda: arena.answer(row, Edit(arguments={
        "retention_offer": {"discount_pct": 30}}), by="dana@finance"), error=InvalidInputError)
    arena.refused(lambda: arena.answer(row, Edit(arguments={
        "goodwill_credit": {"approved_by": "cfo@finance"}}), by="dana@finance"),
        error=InvalidInputError)
    arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
    _credit_paid_to_entity(arena, decision)
    arena.check(arena.effects("crm.create_retention_offer", discount_pct=20),
                "the offer did not run as sales approved it")


@CASES.add("edit-account-spelling", "edit-target",
           "an edit writes the account differently: same account passes, another is locked")
def _edit_spelling(world: World) -> None:
    arena, decision = _churn(world)
    _locked(arena, decision, "finance", "goodwill_credit", {"account_id": "acc-10004"},
            by="dana@finance")
    row = arena.pending(decision)["finance"]
    # Whitespace is not a change (the schema strips it): the edit lowers the amount only.
    arena.answer(row, Edit(arguments={"goodwill_credit": {"account_id": " ACC-10004 ",
                                                          "amount": 120}}), by="dana@finance")
    arena.approve_all(decision)
    credits = arena.effects("finance.issue_credit")
    arena.check([(c["account_id"], c["amount"]) for c in credits] == [("ACC-10004", 120)],
                f"credits: {credits}")


@CASES.add("edit-asset", "edit-target", "maintenance edits a work order onto another asset")
def _edit_asset(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("failure-1", kind="failure"))
    arena.start()
    arena.taint("AST-CMP-0006", "the asset the edit moved the work order to")
    _locked(arena, decision, "maintenance", "work_order", {"asset_id": "AST-CMP-0006"},
            by="max@maint")
    _locked(arena, decision, "operations", "downtime", {"asset_id": "AST-CMP-0006"},
            by="olu@ops")
    arena.approve_all(decision)
    arena.check(arena.status(decision) == "completed", f"decision {arena.status(decision)}")
    arena.check(arena.effects("maintenance.create_work_order", asset_id="AST-CMP-0003")
                and arena.effects("operations.schedule_downtime", asset_id="AST-CMP-0003"),
                "the work order or the downtime did not happen for AST-CMP-0003")


@CASES.add("edit-site-sku", "edit-target",
           "supply chain edits a transfer's source site and SKU; a quantity edit is fine")
def _edit_site(world: World) -> None:
    arena = world()
    (decision,) = arena.ingest(predict("stockout-1", kind="stockout",
                                       features={"shortfall_units": 800}))
    arena.start()
    arena.taint("DC-HAMBURG", "the site the edit moved stock from")
    arena.taint("SKU-99999", "the SKU the edit switched to")
    _locked(arena, decision, "supply_chain", "transfer", {"from_site": "DC-HAMBURG"},
            by="sue@supply")
    _locked(arena, decision, "supply_chain", "transfer", {"sku": "SKU-99999", "quantity": 600},
            by="ian@supply")
    row = arena.pending(decision)["supply_chain"]
    arena.answer(row, Edit(arguments={"transfer": {"quantity": 600}}), by="sue@supply")
    arena.approve_all(decision)
    moved = arena.effects("erp.create_stock_transfer")
    arena.check([(m["from_site"], m["to_site"], m["sku"], m["quantity"]) for m in moved]
                == [("DC-LYON", "DC-MILAN", "SKU-11253", 600)], f"transfers: {moved}")


def _sales_asks(functions: dict[str, Any]) -> None:
    functions["sales"]["auto_approve"] = {}  # every sales step needs a person


@CASES.add("edit-recipient", "edit-target", "sales edits a notification to go to an outsider")
def _edit_recipient(world: World) -> None:
    arena = world(functions=_sales_asks)
    (decision,) = arena.ingest(predict("stockout-1", kind="stockout"))
    arena.start()
    arena.taint("leak@evil.example", "the recipient the edit sent the warning to")
    arena.taint("#general", "the channel the edit sent the warning to")
    _locked(arena, decision, "sales", "warn_sales",
            {"channel": "email", "to": "leak@evil.example"}, by="raj@sales")
    _locked(arena, decision, "sales", "warn_sales", {"to": "#general"}, by="mia@sales")
    arena.approve_all(decision)
    sent = arena.effects("notify.send")
    arena.check([m["to"] for m in sent] == ["#sales-ops"], f"messages: {sent}")


@CASES.add("edit-hitl-and-web", "edit-target",
           "the same redirection through the HITL endpoint and the web inbox form")
def _edit_channels(world: World) -> None:
    arena, decision = _churn(world)
    arena.taint("ACC-10001", "the account the edit redirected the credit to")
    arena.user("dana@finance")
    arena.user("omar@finance")
    row = arena.pending(decision)["finance"]
    step = row.request.steps[0]
    with arena.service() as http:
        edit = {"type": "edit", "edited_action": {
            "name": step.tool, "args": {**step.arguments, "account_id": "ACC-10001"}}}
        response = http.hitl("dana@finance", row.id, [edit])
        arena.check(response.status_code == 422 and "locked" in response.text,
                    f"HITL edit of the account: {response.status_code} {response.text[:200]}")
        page = http.form("omar@finance", row.id, "edit",
                         **{"arg.goodwill_credit.account_id": "ACC-10001"})
        arena.check(page.status_code >= 400 and "locked" in page.text,
                    f"web edit of the account: {page.status_code}")
        arena.check(arena.pending(decision)["finance"].id == row.id, "the request was answered")
        answered = http.hitl("omar@finance", row.id, [{"type": "approve"}])
        arena.check(answered.status_code == 200, f"HITL approve: {answered.text[:200]}")
    arena.approve_all(decision)
    _credit_paid_to_entity(arena, decision)


@CASES.add("edit-after-approval", "edit-target",
           "the approved arguments are changed in the database before a worker applies them")
def _edit_in_database(world: World) -> None:
    arena, decision = _churn(world)
    row = arena.pending(decision)["finance"]
    arena.answer(row, Edit(arguments={"goodwill_credit": {"amount": 150}}), by="dana@finance",
                 apply=False)
    arena.taint(450, "the amount written into the approvals table after approval")
    answered = arena.rt.store.approvals.get(row.id).approved_arguments
    with arena.rt.store.transaction() as conn:  # someone with write access to the store
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            approved_arguments={"goodwill_credit": {**row.request.steps[0].arguments,
                                                    "amount": 450}}))
    forged = verify(arena.rt.store.engine)  # ledger verify names the forged row
    arena.check([(d.id, d.field) for d in forged.disagreements]
                == [(row.id, "approved_arguments.goodwill_credit")],
                f"ledger verify did not name the forged approval: {forged.problem}")
    sales = arena.pending(decision)["sales"]
    arena.answer(sales, Approve(), by="raj@sales")
    arena.work()
    steps = {s["step_id"]: s for s in arena.rt.store.plans.steps(decision, 1)}
    arena.check(steps["goodwill_credit"]["status"] == "failed"
                and "recorded as approved" in (steps["goodwill_credit"]["detail"] or ""),
                f"the tampered credit: {steps['goodwill_credit']}")
    arena.check(not arena.effects("finance.issue_credit"), "a credit was issued")
    arena.check(arena.effects("crm.create_retention_offer", account_id="ACC-10004"),
                "the approved retention offer did not run")
    with arena.rt.store.transaction() as conn:  # the row put back as it was answered
        conn.execute(update(t.approvals).where(t.approvals.c.id == row.id).values(
            approved_arguments=answered))
