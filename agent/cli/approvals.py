"""``decisionops approvals``: list, show and answer approval requests.

Answers go to the approval service (``agent.approvals``) as the registered user named by
``--as``, under the same rules as every other channel (who may answer, four-eyes, edit
rules, holds). A deployment may refuse CLI answers altogether (setting ``cli_answers``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from decisionops.agent.approvals import change_text, shown_value
from decisionops.agent.cli._common import (
    Column,
    console,
    fail,
    limited,
    print_fitted,
    print_json,
    runtime,
    say,
    say_more,
)
from decisionops.agent.errors import (
    ConflictError,
    DecisionOpsError,
    InvalidInputError,
    pydantic_message,
)
from decisionops.agent.models import ApprovalStatus, Approve, Edit, Reject, Revise
from decisionops.agent.preview import preview_rows, preview_summary

if TYPE_CHECKING:
    from decisionops.agent.approvals import Approver
    from decisionops.agent.store import ApprovalRow

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Approval requests: list, show, answer.\n\n"
                  "Example: decisionops approvals approve apr_1f… --as dana@finance")

As = Annotated[str, typer.Option("--as", help="The registered approver you answer as "
                                 "('decisionops users add NAME --role approver --function F'), "
                                 "e.g. dana or dana@finance.")]
ApprovalId = Annotated[str, typer.Argument(help="The approval id (from 'approvals list').")]
NoApply = Annotated[bool, typer.Option(
    "--no-apply", help="Only record the answer; the worker ('run --once') applies it.")]


def _facts(rt: Any, rows: list[ApprovalRow]) -> dict[str, dict[str, Any]]:
    """Approval id → what an approver weighs it by: the entity, the money its steps move
    (their ``amount`` arguments, as approved after an edit), the decision's expected
    value, the request's age, and, under four-eyes, who proposed an edit waiting for a
    second approver (``proposed_by``)."""
    from decisionops.agent.models import utcnow

    now, decisions, out = utcnow(), {}, {}
    for a in rows:
        if a.decision_id not in decisions:
            decisions[a.decision_id] = rt.store.decisions.get(a.decision_id)
        decision = decisions[a.decision_id]
        # What was approved (an edit's arguments), else what is proposed.
        arguments = [(a.approved_arguments or {}).get(s.id) or s.arguments
                     for s in a.request.steps]
        amounts = [args["amount"] for args in arguments
                   if isinstance(args.get("amount"), int | float)
                   and not isinstance(args.get("amount"), bool)]
        currencies = {str(args["currency"]) for args in arguments if args.get("currency")}
        out[a.id] = {"entity_id": decision.entity_id,
                     "amount": sum(amounts) if amounts else None,
                     "currency": currencies.pop() if len(currencies) == 1 else None,
                     "expected_value": decision.expected_value,
                     "age_seconds": max(0, int((now - a.requested_at).total_seconds())),
                     "proposed_by": None}
        if a.status is ApprovalStatus.PENDING and rt.policies.get(a.function).four_eyes:
            proposal = rt.approvals.proposal(a.id)
            out[a.id]["proposed_by"] = proposal["proposer"] if proposal else None
    return out


def _age(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _money(value: float | None, currency: str | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" + (f" {currency}" if currency else "")


def _row(a: ApprovalRow, facts: dict[str, Any], with_status: bool) -> list[Any]:
    why = (f"edit proposed by {facts['proposed_by']}, waiting for a second approver; "
           f"{a.reason}" if facts["proposed_by"] else a.reason)
    return [a.id, a.function, facts["entity_id"], _money(facts["amount"], facts["currency"]),
            _money(facts["expected_value"]), _age(facts["age_seconds"]),
            f"{a.status.value}: {why}" if with_status else why]


@app.command("list")
def list_(
    function: Annotated[str | None, typer.Option(help="Only this function's requests.")] = None,
    status: Annotated[str, typer.Option(help="pending (default), approved, edited, rejected, "
                                        "revise, auto_approved, superseded (withdrawn ones "
                                        "too), withdrawn, expired, or all "
                                        "(under four-eyes, a request with an edit proposed "
                                        "is pending and says by whom; 'approvals show' "
                                        "prints the proposal).")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List approval requests, most urgent first (pending: by the hour they are due, then
    the value at stake, as the inbox and the API rank them; other statuses by deadline):
    id, function, entity, the amount its steps move, the decision's expected value, age
    and why people are asked.
    The table fits the terminal (ids whole, long text cut with …); --json has every field.

    Example: decisionops approvals list --function finance
    """
    valid = {s.value for s in ApprovalStatus} | {"withdrawn", "all"}
    if status not in valid:
        raise fail(f"--status: {status!r} is not one of {', '.join(sorted(valid))}")
    with runtime() as rt:
        if function is not None:
            rt.policies.get(function)
        # pending: the inbox's order, as the API and the inbox page them (trial 21)
        found = (rt.store.approvals.ranked([function] if function else None, limit=limit + 1)
                 if status == "pending" else
                 rt.store.approvals.list(function=function,
                                         status=None if status == "all" else status,
                                         limit=limit + 1))
        rows, more = limited(found, limit)
        facts = _facts(rt, rows)
    if as_json:
        print_json([r.to_dict() | facts[r.id] for r in rows])
        if more:
            say_more(limit, 10_000, as_json=True)
        return
    with_status = status == "all"
    columns = [Column("id"), Column("function"), Column("entity"),
               Column("amount", justify="right"), Column("exp. value", justify="right"),
               Column("age", justify="right"),
               Column("status: why asked" if with_status else "why asked", overflow="ellipsis")]
    # Ids, functions, entities and amounts whole; on a narrow terminal the age and the
    # expected value give way, and the free text gets what is left, cut with ….
    print_fitted(f"approvals ({status})", columns, [_row(a, facts[a.id], with_status) for a in rows],
                 drop=("age", "exp. value"), empty=f"no {status} approval requests")
    if more:
        say_more(limit, 10_000, as_json=False)


@app.command("show")
def show(approval_id: ApprovalId,
         as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Show one request: the steps proposed, the rest of the plan, and the prediction.

    Example: decisionops approvals show apr_1f2e…
    """
    with runtime() as rt:
        row = rt.store.approvals.get(approval_id)
        decision = rt.store.decisions.get(row.decision_id)
        prediction = rt.store.predictions.get(decision.prediction_id)
        locked = rt.approvals.locked(row.request)
        held = rt.approvals.held(decision, [row.function])
        proposal = rt.approvals.proposal(approval_id)
        four_eyes = rt.policies.get(row.function).four_eyes
        can_revise, offer = rt.approvals.revise_offered(row)
    if as_json:
        print_json({"approval": row.to_dict(), "prediction": prediction.model_dump(mode="json"),
                    "locked": locked, "held": held, "preview_hash": row.request.preview_hash,
                    "four_eyes": four_eyes, "proposal": proposal, "can_revise": can_revise,
                    "revise_can": offer})
        return
    request = row.request
    say("[bold]{}[/] {} · {} · decision {} · plan v{} ({})", approval_id, row.function,
        row.shown_status, row.decision_id, row.plan_version, row.plan_hash[:12])
    console.print(f"prediction {prediction.kind} {prediction.entity_id}: score "
                  f"{prediction.score:.2f}, value at stake {prediction.value_at_stake}, "
                  f"explanation {prediction.explanation}")
    console.print(f"why asked: {row.reason}")
    for step in request.steps:
        say("  [cyan]{}[/] {} risk={}", step.id, step.tool, step.risk.value)
        for name, value in step.arguments.items():
            mark = "  [yellow](locked: what the step acts on)[/]" if name in locked.get(
                step.id, []) else ""
            say("      {} = {}" + mark, name, shown_value(value), highlight=False)
        preview = request.previews.get(step.id)
        if preview is None:
            say("      [dim]no preview: the tool declares none[/]")
        elif "result" in preview:
            result = preview["result"]
            console.print(f"      would change: {preview_summary(result)}", highlight=False,
                          markup=False)
            for name, now, after in preview_rows(result) if result.get("summary") else ():
                console.print(f"        {name}: {now} → {after}" if after != "" else
                              f"        {name}: {now}", highlight=False, markup=False)
        else:
            say("      [yellow]preview unavailable[/] ({}: {})", preview["tool"],
                preview.get("error"), highlight=False)
    if request.previews:
        console.print(f"preview hash (approve --preview-hash binds your answer to what you "
                      f"saw): {request.preview_hash}", highlight=False)
    if request.other_steps:
        console.print(f"rest of the plan: {', '.join(request.other_steps)}")
    for other in request.related:
        say("[yellow]also open on {}:[/] {} {} {}: {}", prediction.entity_id,
            other.decision_id, other.kind, other.status, ", ".join(other.steps) or "no plan yet",
            highlight=False)
    if held:
        say("[yellow]on hold:[/] {}; answers wait until it is released", held)
    if proposal is not None:
        say("[yellow]edit proposed by {}[/] (four eyes: approving approves it):",
            proposal["proposer"])
        for change in proposal["changes"]:
            console.print(f"      {change_text(change)}", highlight=False)
        console.print(f"proposal hash (approve --proposal-hash approves exactly this edit): "
                      f"{proposal['hash']}", highlight=False)

    if can_revise and offer:
        console.print(f"a revise can: {offer} (approvals revise --feedback naming one of "
                      "those; for anything else, edit or reject)", highlight=False)
    elif row.status.value == "pending" and not can_revise:
        console.print("no revise: " + ("the playbook planner can change nothing in this plan "
                                       "version" if offer == "" else "this is the last plan "
                                       "version the loop drafts") + "; approve, edit or reject",
                      highlight=False)
    why = row.withdrawn
    if why is not None:
        say("[yellow]withdrawn[/]: {}; there is nothing to answer on this request", why,
            highlight=False)
    elif row.answer:
        console.print(f"answer by {row.approver}: {json.dumps(row.answer)}")


def registered_user(rt: Any, name: str) -> Approver:
    """The registered user ``--as`` names (the CLI answers as one, never as a bare name)."""
    from decisionops.agent.approvals import Approver

    try:
        user = rt.store.users.named(name)  # dana for dana@finance, when only one is meant
    except InvalidInputError as exc:
        raise fail(f"--as: {exc.message.removeprefix('name: ')}", field="--as") from None
    if user is None:
        short = name.partition("@")[0]
        if short != name and rt.store.users.get(short) is not None:
            # (trial 28: the advice to add dana@billing beside dana is refused)
            raise fail(f"--as: {name!r} is not a registered user; the registered user "
                       f"{short!r} answers as {name} where the policies list it: --as {short}")
        raise fail(f"--as: {name!r} is not a registered user; the CLI answers as a registered "
                   f"approver: decisionops users add {name} --role approver --function …")
    if user["disabled_at"] is not None:
        raise fail(f"--as: user {name!r} is disabled")
    return Approver(name=user["name"], role=user["role"], functions=tuple(user["functions"]),
                    channel="cli")


def _hash_option(exc: DecisionOpsError, status: int) -> None:
    """A refusal naming ``preview_hash`` or ``proposal_hash`` names the option that
    carries it here (``--preview-hash``, ``--proposal-hash``)."""
    field = exc.details.get("field")
    if field in ("preview_hash", "proposal_hash"):
        option = "--" + field.replace("_", "-")
        reason = exc.details.get("reason")  # stale_preview…, as the API's body has it
        raise fail(f"{option}: {exc.message.removeprefix(f'{field}: ')}"
                   .replace(f"with {field}", f"with {option}"),
                   exc.exit_code, status=status, field=option,
                   **({"reason": reason} if reason else {})) from None


def _answer(approval_id: str, answer: Any, as_: str, no_apply: bool, verb: str,
            preview_hash: str | None = None, proposal_hash: str | None = None,
            as_json: bool = False) -> None:
    from decisionops.agent.worker import Worker

    with runtime() as rt:
        who = registered_user(rt, as_)
        # Built first: a planner it cannot build (the model endpoint's settings) is said
        # before the answer is recorded, not after.
        worker = None if no_apply else Worker(rt)
        try:
            result = rt.approvals.answer(approval_id, answer, by=who, preview_hash=preview_hash,
                                         proposal_hash=proposal_hash)
        except InvalidInputError as exc:
            # The service names arguments as arguments.<step>.<argument>; --set as
            # step.<step>.<argument>.
            if exc.field and exc.field.startswith("arguments."):
                message = exc.message.removeprefix(f"{exc.field}: ")
                raise fail(f"--set step.{exc.field.removeprefix('arguments.')}: {message}",
                           exc.exit_code) from None
            if exc.field == "arguments":  # the edit as a whole (it changes nothing)
                raise fail(f"--set: {exc.message.removeprefix('arguments: ')}",
                           exc.exit_code) from None
            _hash_option(exc, 422)
            raise
        except ConflictError as exc:
            _hash_option(exc, 409)
            raise
        answered = rt.store.approvals.get(approval_id)
        function = answered.function
        stopped = None
        try:
            carried = (None if worker is None or result.held or result.status == "proposed"
                       else worker.apply(result.decision_id))
        except DecisionOpsError as exc:
            # The answer is recorded; carrying the decision on stopped (a tool down past
            # its retries): the loop carries it on once the lease lapses.
            carried, stopped = None, exc.message
            result = replace(result, decision_status=rt.store.decisions.get(
                result.decision_id).status.value)
        # Applied: a leg of the decision ran with it. None ran while another function's
        # answer is awaited (answers go to the decision together), or another worker has it.
        applied = carried if carried is not None and carried.legs else None
        waits_for = sorted({rt.store.approvals.get(i).function
                            for i in result.pending_approvals})
        # The world changed since the answered version was routed: nothing of it ran, and
        # the next version waits on its approvers (trial 26: only "awaiting_approval")
        now = rt.store.decisions.get(result.decision_id)
        again = (sorted({r.function for r in rt.store.approvals.list(
                    decision_id=result.decision_id, status="pending", limit=100)})
                 if applied is not None and now.plan_version > answered.plan_version else [])
    if as_json:  # the HTTP API's answer body, with what applying it did
        status = None if applied is None else getattr(applied.status, "value", applied.status)
        print_json({"approval_id": result.approval_id, "status": result.status,
                    "decision_id": result.decision_id,
                    "decision_status": status or result.decision_status,
                    "pending_approvals": result.pending_approvals, "held": result.held,
                    "applied": applied is not None,
                    **({"stopped": stopped} if stopped else {})})
        return
    if result.status == "proposed":
        console.print(f"proposed an edit to {approval_id} as {as_}; under four eyes another "
                      f"approver of {function} approves it")
        return
    msg = f"{verb} {approval_id} as {as_}"
    if result.held:
        console.print(f"{msg}; not applied while on hold: {result.held}")
        return
    if stopped is not None:
        msg += (f"; carrying decision {result.decision_id} on stopped: {stopped} (the loop "
                "tries again once its lease lapses)")
    elif again:
        why = (f"plan v{answered.plan_version} ends with this revise: none of it ran"
               if answer.type == "revise" else
               f"the world changed since plan v{answered.plan_version} was routed, so none "
               "of it ran")
        msg += (f"; {why}: decision {result.decision_id} is on v{now.plan_version}, "
                f"asked of {', '.join(again)} again (decisionops decisions show "
                f"{result.decision_id} says what changed)")
    elif applied is not None:
        msg += f"; decision {applied.decision_id} is now {applied.status}"
    elif waits_for:
        msg += (f"; decision {result.decision_id} waits for {', '.join(waits_for)} to answer "
                "too, then goes on")
    elif carried is not None:
        msg += f"; decision {result.decision_id} is {result.decision_status}"
    elif not no_apply:
        msg += "; a worker holds the decision and will apply it"
    else:
        msg += "; the next 'decisionops run' applies it"
    console.print(msg)


AnswerJson = Annotated[bool, typer.Option(
    "--json", help="Print the answer recorded as JSON (the HTTP API's answer body, and "
    "whether it was applied).")]
PreviewHashOption = Annotated[str | None, typer.Option(
    "--preview-hash", help="The preview hash 'approvals show' printed: the answer is refused "
    "if what each step would change was read again since.")]


@app.command("approve")
def approve(approval_id: ApprovalId, approver: As, no_apply: NoApply = False,
            comment: Annotated[str, typer.Option(help="Optional note.")] = "",
            preview_hash: PreviewHashOption = None,
            proposal_hash: Annotated[str | None, typer.Option(
                "--proposal-hash", help="Under four eyes, the edit proposal 'approvals show' "
                "printed: approving approves exactly that edit (required while one stands; "
                "refused if it was replaced since).")] = None,
            as_json: AnswerJson = False) -> None:
    """Approve a function's part of a plan as proposed (under four eyes, with an edit
    proposed by another approver: that edit, named by --proposal-hash).

    Example: decisionops approvals approve apr_1f2e… --as dana@finance
    """
    _answer(approval_id, _model(Approve, comment=comment), approver, no_apply, "approved",
            preview_hash, proposal_hash, as_json)


@app.command("edit")
def edit(approval_id: ApprovalId, approver: As,
         set_: Annotated[list[str], typer.Option(
             "--set", help="`step.<step_id>.<argument>=<value>` (value as JSON, else text); "
                           "repeatable.")],
         no_apply: NoApply = False,
         comment: Annotated[str, typer.Option(help="Optional note.")] = "",
         preview_hash: PreviewHashOption = None, as_json: AnswerJson = False) -> None:
    """Approve with changed arguments; they are validated against the tool schema and
    the function's limits before anything is recorded.

    Arguments that name what a step acts on (account, asset, currency, recipient…) are
    locked: 'approvals show' marks them; to act on something else, reject or revise.

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
    _answer(approval_id, _model(Edit, arguments=changes, comment=comment), approver, no_apply,
            "edited and approved", preview_hash, as_json=as_json)


@app.command("reject")
def reject(approval_id: ApprovalId, approver: As,
           reason: Annotated[str, typer.Option(help="Why; recorded and shown.")],
           no_apply: NoApply = False, preview_hash: PreviewHashOption = None,
           as_json: AnswerJson = False) -> None:
    """Reject a function's part; its steps and the steps depending on them are skipped.

    Example: decisionops approvals reject apr_1f2e… --as raj@sales --reason "customer already on a deal"
    """
    _answer(approval_id, _model(Reject, reason=reason), approver, no_apply, "rejected",
            preview_hash, as_json=as_json)


@app.command("revise")
def revise(approval_id: ApprovalId, approver: As,
           feedback: Annotated[str, typer.Option(
               help="What the planner should change. The offline playbook planner applies "
               "only what the playbook declares revisable ('approvals show' says what); "
               "feedback it can apply nothing of is refused.")],
           no_apply: NoApply = False, preview_hash: PreviewHashOption = None,
           as_json: AnswerJson = False) -> None:
    """Ask the planner for a new plan version (bounded); every function is asked again.

    Example: decisionops approvals revise apr_1f2e… --as raj@sales --feedback "a 15% discount"
    """
    _answer(approval_id, _model(Revise, feedback=feedback), approver, no_apply,
            "asked to revise", preview_hash, as_json=as_json)


_OPTIONS = {"arguments": "set"}
"""The answer's fields the CLI's options name otherwise."""


def _model(answer: Any, **options: Any) -> Any:
    """The answer the options make, or the answer model's refusal naming the option."""
    try:
        return answer(**options)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        option = str(err["loc"][0])
        raise fail(f"--{_OPTIONS.get(option, option)}: {pydantic_message(err)}") from None
