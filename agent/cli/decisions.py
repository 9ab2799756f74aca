"""``decisionops decisions``: list and inspect decisions."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from decisionops.agent.approvals import argument_trail
from decisionops.agent.cli._common import (
    Column,
    console,
    fail,
    limited,
    print_fitted,
    print_json,
    print_table,
    runtime,
    say,
    say_more,
)
from decisionops.agent.hand_plans import HAND
from decisionops.agent.models import DecisionStatus, utcnow
from decisionops.agent.preview import preview_summary

__all__ = ["app"]

_ENDED = {DecisionStatus.COMPLETED.value, DecisionStatus.REJECTED.value,
          DecisionStatus.FAILED.value, DecisionStatus.COMPENSATED.value}
"""Statuses no hold keeps anywhere."""

app = typer.Typer(no_args_is_help=True, help="Decisions: list and show.\n\n"
                  "Example: decisionops decisions show dec_5a1c…")


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="Filter by status.")] = None,
    kind: Annotated[str | None, typer.Option(help="Filter by prediction kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List decisions, most recently updated first.

    Example: decisionops decisions list --status awaiting_approval
    """
    if status is not None and status not in {s.value for s in DecisionStatus}:
        raise fail(f"--status: {status!r} is not one of "
                   f"{', '.join(s.value for s in DecisionStatus)}")
    with runtime() as rt:
        found, more = limited(rt.store.decisions.list(status=status, kind=kind,
                                                      limit=limit + 1), limit)
        rows = [d.to_dict() for d in found]
        # A live decision an entity, playbook or decision hold keeps where it is says so
        # (trial 26: "awaiting_approval" with every answer in, and no word of the hold);
        # one a function hold stopped reads "held" already.
        holds = rt.store.holds.active()
        for d in rows:
            d["held"] = (None if d["status"] in _ENDED else holds.why(
                entity_id=d["entity_id"], playbook=d["playbook"], decision_id=d["id"]))
    if as_json:
        print_json(rows)
        if more:
            say_more(limit, 10_000, as_json=True)
        return
    # Every shown value whole (a person types the ids next): on a narrow terminal the
    # least needed columns give way (update time, then plan version, then value); why a
    # decision needs a person or failed (its error) takes what is left, cut with ….
    print_fitted("decisions", [Column("id"), Column("kind"), Column("entity"), Column("status"),
                               Column("exp. value", justify="right"), Column("plan"),
                               Column("updated (UTC)"), Column("why", overflow="ellipsis")],
                 [[d["id"], d["kind"], d["entity_id"], d["status"],
                   "" if d["expected_value"] is None else f"{d['expected_value']:,.0f}",
                   f"v{d['plan_version']}", f"{d['updated_at']:%Y-%m-%d %H:%M}",
                   " ".join((d["error"] or (f"on hold: {d['held']}" if d["held"] else "")
                             ).split())] for d in rows],
                 drop=("updated (UTC)", "plan", "exp. value", "why"),
                 empty="no decisions yet: decisionops run --once")
    if more:
        say_more(limit, 10_000, as_json=False)


def _print_side_by_side(steps: list[dict[str, Any]]) -> None:
    def show(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    rows = []
    for s in steps:
        for n, name in enumerate(s["names"]):
            approved = "-" if s["approved"] is None else show(s["approved"].get(name))
            if name in s["edited"]:
                approved += " (edited)"
            executed = "-" if s["executed"] is None else show(s["executed"].get(name))
            if name in s["not_as_approved"]:
                executed += " (NOT as approved)"
            label = f"{s['step_id']} ({s['approval']}, {s['execution'] or 'not run'})"
            rows.append([label if n == 0 else "", name, show(s["proposed"].get(name)),
                         approved, executed])
    print_table("arguments: proposed, approved, executed", ["step", "argument", "proposed",
                                                             "approved", "executed"], rows,
                empty="no plan yet")


@app.command("show")
def show(decision_id: Annotated[str, typer.Argument(help="Decision id.")],
         as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Everything about one decision: prediction, triage, plan DAG, each step's
    arguments as proposed, as approved (edits included) and as executed, side by side,
    approvals, executions, approver notifications (channel, status, attempts, last
    error) and its ledger entries.

    Example: decisionops decisions show dec_5a1c…
    """
    with runtime() as rt:
        row = rt.store.decisions.get(decision_id)
        decision = row.to_dict()
        prediction = rt.store.predictions.row(row.prediction_id) or {}
        plan = rt.store.plans.get(decision_id) if row.plan_version else None
        steps = rt.store.plans.steps(decision_id, row.plan_version) if plan else []
        approval_rows = rt.store.approvals.list(decision_id=decision_id)
        execution_rows = rt.store.executions.list(decision_id)
        approvals = [a.to_dict() for a in approval_rows]
        executions = [e.to_dict() for e in execution_rows]
        arguments = argument_trail(plan, approval_rows, execution_rows) if plan else []
        entries = rt.store.ledger.entries(decision_id)
        notifications = [n.to_dict() for n in rt.store.notifications.for_decision(decision_id)]
        locked = {s.id: list(rt.tools.spec(s.tool).targets) for s in plan.steps} if plan else {}
        held = rt.approvals.held(row, plan.functions() if plan else ())
        related = [o.related.model_dump(mode="json") for o in rt.store.decisions.open_on_entity(
            prediction.get("entity_type", ""), row.entity_id, exclude=decision_id)]
    if as_json:
        print_json({"decision": decision, "prediction": prediction, "held": held,
                    "related": related,
                    "plan": plan.model_dump(mode="json") if plan else None, "locked": locked,
                    "steps": steps, "arguments": arguments, "approvals": approvals,
                    "executions": executions, "notifications": notifications,
                    "ledger": [e.model_dump(mode="json") for e in entries]})
        return
    value = decision["expected_value"]
    say("[bold]{}[/] · {} · {} {} · expected value {}", decision_id, decision["status"],
        decision["kind"], decision["entity_id"],
        "unknown (no value at stake)" if value is None else f"{value:,.2f}")
    if decision["error"]:
        say("[red]{}[/]", decision["error"])
    if held:
        say("[yellow]on hold:[/] {}", held)
    if decision["lease_owner"] and decision["lease_until"] and \
            decision["status"] in ("planning", "executing"):
        # (trial 27: after a worker died mid-execution nothing said who had it, or when
        # the loop would carry it on)
        until = datetime.fromisoformat(str(decision["lease_until"]))
        say("[yellow]in the hands of {}[/] until {:%H:%M:%S}Z; {}", decision["lease_owner"],
            until, "a worker carries it on when its lease has lapsed (if that worker stopped)"
            if until > utcnow() else "its lease has lapsed: the loop's next pass carries it on")
    for other in related:
        say("[yellow]also open on {}:[/] {} {} {}: {}", decision["entity_id"],
            other["decision_id"], other["kind"], other["status"],
            ", ".join(other["steps"]) or "no plan yet", highlight=False)
    payload = prediction.get("payload", {})
    explained = payload.get("explanation")
    console.print(f"prediction {decision['prediction_id']}: score {payload.get('score')}"
                  + (f", explanation {explained}" if explained else ""), highlight=False)
    console.print(f"triage: {prediction.get('triage_action')} ({prediction.get('triage_detail')})")
    if plan:
        source = plan.playbook or (plan.rationale.split(":", 1)[0] if plan.planner == HAND
                                   else "no playbook")
        console.print(f"plan v{plan.version} by {plan.planner} ({source}), "
                      f"{'all-or-nothing' if plan.all_or_nothing else 'independent steps'}, "
                      f"hash {plan.hash[:12]}")
        status = {s["step_id"]: (s["status"], s["detail"]) for s in steps}
        for trail in arguments:  # a step's status is written when it ends; until then,
            st, detail = status.get(trail["step_id"], ("?", None))  # what is under way
            if st == "proposed" and trail["approval"] not in ("pending", "not asked yet"):
                status[trail["step_id"]] = (", ".join(
                    s for s in (trail["approval"], trail["execution"]) if s), detail)
        for wave_no, wave in enumerate(plan.topological_order(), 1):
            for step_id in wave:
                step = plan.step(step_id)
                st, detail = status.get(step_id, ("?", None))
                after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
                say("  {}. [cyan]{}:{}[/] {}{} → [bold]{}[/]{}{}", wave_no, step.function,
                    step.id, step.tool, after, st, f" ({detail})" if detail else "",
                    f"; locked: {', '.join(locked[step.id])}" if locked.get(step.id) else "",
                    highlight=False)
    if plan:
        _print_side_by_side(arguments)
    print_table("approvals", ["id", "function", "plan", "status", "by", "answer"],
                [[a["id"], a["function"], f"v{a['plan_version']}",
                  "withdrawn" if a["withdrawn"] else a["status"], a["approver"],
                  json.dumps(a["answer"]) if a["answer"] else ""] for a in approvals],
                empty="no approvals")
    # What each step would change, as its approvers saw it (read when routed).
    for a in approvals:
        for step_id, seen in a["request"].get("previews", {}).items():
            what = (preview_summary(seen["result"]) if "result" in seen
                    else f"unavailable ({seen.get('error')})")
            console.print(f"preview v{a['plan_version']} {a['function']}:{step_id}: {what}",
                          highlight=False, markup=False)
    changed = [e for e in entries if e.event == "preview.changed"]
    for e in changed:
        then = e.body["then"]
        if then == "routed again" and decision["plan_version"] == e.body["plan_version"]:
            # recorded, but the leg stopped before it drafted the next version (trial 27)
            then = (f"to be drafted and routed again as v{e.body['plan_version'] + 1} when "
                    "the loop carries the decision on")
        say("[yellow]the world changed before v{} ran ({}):[/] {}", e.body["plan_version"],
            then, "; ".join(f"{f}: {why}" for f, why in e.body["changed"].items()),
            highlight=False)
    print_table("executions", ["step", "purpose", "tool", "status", "attempts", "receipt/error"],
                [[e["step_id"], e["purpose"], e["tool"], e["status"], e["attempts"],
                  json.dumps(e["receipt"]) if e["receipt"] else e["error"]] for e in executions],
                empty="no executions")
    print_table("notifications", ["approval", "event", "channel", "to", "status",
                                  "attempts", "error"],
                [[n["approval_id"], n["event"], n["channel"], n["recipient"], n["status"],
                  n["attempts"], n["last_error"] or ""] for n in notifications],
                empty="no notifications")
    print_table("ledger", ["seq", "at", "actor", "event"],
                [[e.seq, f"{e.at:%H:%M:%S.%f}", e.actor, e.event] for e in entries])
