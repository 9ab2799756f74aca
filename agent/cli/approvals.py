"""``decisionops approvals``: list, show and answer approval requests."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from agent.cli._common import console, fail, print_json, print_table, runtime
from agent.models import ApprovalStatus, Approve, Edit, Reject, Revise

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Approval requests: list, show, answer.\n\n"
                  "Example: decisionops approvals approve apr_1f… --as dana@finance")

As = Annotated[str, typer.Option("--as", help="Your approver identity, e.g. dana@finance.")]
ApprovalId = Annotated[str, typer.Argument(help="The approval id (from 'approvals list').")]
NoApply = Annotated[bool, typer.Option(
    "--no-apply", help="Only record the answer; the worker ('run --once') applies it.")]


def _row(a: dict[str, Any]) -> list[Any]:
    steps = ", ".join(s["id"] for s in (a["request"] or {}).get("steps", []))
    return [a["id"], a["function"], a["decision_id"], steps, a["status"],
            a["deadline"] and f"{a['deadline']:%Y-%m-%d %H:%M}", a["reason"]]


@app.command("list")
def list_(
    function: Annotated[str | None, typer.Option(help="Only this function's requests.")] = None,
    status: Annotated[str, typer.Option(help="pending (default), approved, edited, rejected, "
                                        "revise, auto_approved, superseded, or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List approval requests, most urgent deadline first.

    Example: decisionops approvals list --function finance
    """
    valid = {s.value for s in ApprovalStatus} | {"all"}
    if status not in valid:
        raise fail(f"--status: {status!r} is not one of {', '.join(sorted(valid))}")
    with runtime() as rt:
        if function is not None:
            rt.policies.get(function)
        rows = rt.store.approvals(function=function, status=None if status == "all" else status,
                                  limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(f"approvals ({status})", ["id", "function", "decision", "steps", "status",
                                          "deadline", "why asked"], [_row(a) for a in rows],
                empty=f"no {status} approval requests")


@app.command("show")
def show(approval_id: ApprovalId,
         as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show one request: the steps proposed, the rest of the plan, and the prediction.

    Example: decisionops approvals show apr_1f2e…
    """
    with runtime() as rt:
        row = rt.store.approval(approval_id)
        decision = rt.store.decision(row["decision_id"])
        prediction = rt.store.prediction(decision["prediction_id"])
    if as_json:
        print_json({"approval": row, "prediction": prediction.model_dump(mode="json")})
        return
    request = row["request"]
    console.print(f"[bold]{approval_id}[/] {row['function']} · {row['status']} · decision "
                  f"{row['decision_id']} · plan v{row['plan_version']} ({row['plan_hash'][:12]})")
    console.print(f"prediction {prediction.kind} {prediction.entity_id}: score "
                  f"{prediction.score:.2f}, value at stake {prediction.value_at_stake}, "
                  f"explanation {prediction.explanation}")
    console.print(f"why asked: {row['reason']}")
    for step in request["steps"]:
        console.print(f"  [cyan]{step['id']}[/] {step['tool']} risk={step['risk']} "
                      f"{json.dumps(step['arguments'], ensure_ascii=False)}")
    if request.get("other_steps"):
        console.print(f"rest of the plan: {', '.join(request['other_steps'])}")
    if row["answer"]:
        console.print(f"answer by {row['approver']}: {json.dumps(row['answer'])}")


def _answer(approval_id: str, answer: Any, approver: str, no_apply: bool, verb: str) -> None:
    with runtime(actor=approver) as rt:
        result = rt.answer(approval_id, answer, approver=approver, apply=not no_apply)
    msg = f"{verb} {approval_id} as {approver}"
    if result is not None:
        msg += f"; decision {result.decision_id} is now {result.status}"
    elif not no_apply:
        msg += "; a worker holds the decision and will apply it"
    console.print(msg)


@app.command("approve")
def approve(approval_id: ApprovalId, approver: As, no_apply: NoApply = False,
            comment: Annotated[str, typer.Option(help="Optional note.")] = "") -> None:
    """Approve a function's part of a plan as proposed.

    Example: decisionops approvals approve apr_1f2e… --as dana@finance
    """
    _answer(approval_id, Approve(comment=comment), approver, no_apply, "approved")


@app.command("edit")
def edit(approval_id: ApprovalId, approver: As,
         set_: Annotated[list[str], typer.Option(
             "--set", help="`step.<step_id>.<argument>=<value>` (value as JSON, else text); "
                           "repeatable.")],
         no_apply: NoApply = False) -> None:
    """Approve with changed arguments; they are validated against the tool schema and
    the function's limits before anything is recorded.

    Example: decisionops approvals edit apr_1f2e… --as dana@finance --set step.goodwill_credit.amount=150
    """
    changes: dict[str, dict[str, Any]] = {}
    for item in set_:
        target, sep, raw = item.partition("=")
        parts = target.split(".")
        if not sep or len(parts) != 3 or parts[0] != "step" or not all(parts):
            raise fail(f"--set: {item!r} must look like step.<step_id>.<argument>=<value>")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        changes.setdefault(parts[1], {})[parts[2]] = value
    _answer(approval_id, Edit(arguments=changes), approver, no_apply, "edited and approved")


@app.command("reject")
def reject(approval_id: ApprovalId, approver: As,
           reason: Annotated[str, typer.Option(help="Why; recorded and shown.")],
           no_apply: NoApply = False) -> None:
    """Reject a function's part; its steps and the steps depending on them are skipped.

    Example: decisionops approvals reject apr_1f2e… --as raj@sales --reason "customer already on a deal"
    """
    if not reason.strip():
        raise fail("--reason: must not be empty")
    _answer(approval_id, Reject(reason=reason), approver, no_apply, "rejected")


@app.command("revise")
def revise(approval_id: ApprovalId, approver: As,
           feedback: Annotated[str, typer.Option(help="What the planner should change.")],
           no_apply: NoApply = False) -> None:
    """Ask the planner for a new plan version (bounded); every function is asked again.

    Example: decisionops approvals revise apr_1f2e… --as raj@sales --feedback "offer an upgrade instead"
    """
    if not feedback.strip():
        raise fail("--feedback: must not be empty")
    _answer(approval_id, Revise(feedback=feedback), approver, no_apply, "asked to revise")
