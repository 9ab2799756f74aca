"""``decisionops policy``: what the function policies say, and what the record earns them.

``policy autonomy`` lists earned autonomy's step classes (``agent.approvals``'s
``EarnedAutonomy`` owns the rules; this only translates): each class's state, its run of
approvals and by whom, its outcomes against the control group, and what the record
earns it today. ``--dry-run`` answers "what would opting in give us": the classes that
would be promoted now, with the thresholds given, and the approval requests a week they
would take off people's hands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from decisionops.agent.cli._common import console, fail, print_json, runtime, say
from decisionops.agent.errors import DecisionOpsError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Function policies and earned autonomy.\n\n"
                  "Example: decisionops policy autonomy --function finance")
autonomy_app = typer.Typer(help="Earned autonomy: step classes people approve as they are, "
                                "promoted and demoted by the record.\n\n"
                                "Example: decisionops policy autonomy --dry-run --after 10")
app.add_typer(autonomy_app, name="autonomy")

Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
As = Annotated[str, typer.Option("--as", help="The registered user who decides (an approver "
                                 "of the class's function, or an admin).")]


@autonomy_app.callback(invoke_without_command=True)
def autonomy(ctx: typer.Context,
             function: Annotated[str | None, typer.Option(help="Only this function.")] = None,
             dry_run: Annotated[bool, typer.Option(
                 "--dry-run", help="What would be promoted today, and the approval requests a "
                 "week it would save (for functions not opted in too).")] = False,
             after: Annotated[int | None, typer.Option(
                 min=2, help="With --dry-run: approvals in a row needed (default: the "
                 "policy's, else 20).")] = None,
             approvers: Annotated[int | None, typer.Option(
                 min=2, help="With --dry-run: distinct approvers needed (default: the "
                 "policy's, else 2).")] = None,
             as_json: Json = False) -> None:
    """List step classes: state (promoted, demoted, revoked, learning), the run of plain
    approvals since the last change and by whom, outcomes vs the control group, and what
    the record earns each today.

    Example: decisionops policy autonomy --json

    Example: decisionops policy autonomy --dry-run --after 10
    """
    if ctx.invoked_subcommand is not None:
        return
    if (after is not None or approvers is not None) and not dry_run:
        raise fail("--after/--approvers: only with --dry-run (the policy's thresholds apply "
                   "otherwise)")
    with runtime() as rt:
        try:
            if dry_run:
                dry = rt.approvals.autonomy.dry_run(function, after=after, approvers=approvers)
            else:
                rows = rt.approvals.autonomy.report(function)
        except DecisionOpsError as exc:
            raise fail(f"--function: {exc.message}") from None
    if as_json:
        print_json({"dry_run": True, **dry} if dry_run else rows)
        return
    if dry_run:
        replay = dry["replay"]
        _print(dry["would_promote"], title="would be promoted today")
        console.print(f"approval requests a week this would take off people: "
                      f"{dry['requests_per_week_saved']:g} (the last 4 weeks' pace)")
        console.print(
            f"the record replayed under this rule: of {replay['requests_answered']} requests "
            f"people answered, earned autonomy would have taken {replay['would_have_taken']}; "
            f"people had in fact objected to {replay['of_which_people_objected']} of those "
            f"(rejected, revised or edited); {replay['with_an_outcome']} have an outcome on "
            f"record, {replay['with_a_bad_outcome']} of them not a success"
            + (f" (of every decision people answered with an outcome on record: "
               f"{replay['bad_outcome_share_all_decisions']:.0%} not a success)"
               if replay["bad_outcome_share_all_decisions"] is not None else ""))
        return
    _print(rows, title="earned autonomy")


def _print(rows: list[dict[str, Any]], *, title: str) -> None:
    """One class per block: its key whole on a line of its own (they are long), then its
    state, run and pace, then why (what it lacks, or why its state changed) and its
    outcomes."""
    if not rows:
        say("[dim]no step class on record yet: classes appear as approvers answer requests[/]")
        return
    say("[bold]{}[/] ({} class{})", title, len(rows), "es" if len(rows) != 1 else "")
    for r in rows:
        state = r["state"] + ("" if r["opted_in"] else " (not opted in)")
        by = f" by {', '.join(r['approvers'])}" if r["approvers"] else ""
        say("[bold]{}[/]", r["class"], soft_wrap=True, highlight=False)
        console.print(f"  {state} · {r['run']}/{r['thresholds']['after']} in a row{by} · "
                      f"{r['requests_per_week']:g} requests a week", highlight=False,
                      markup=False)
        why = r["reason"] or r["would"]
        if r["outcomes"] not in why:
            why += f"; {r['outcomes']}"
        console.print(f"  {why}", highlight=False, markup=False)


def _change(key: str, name: str, reason: str, *, revoke: bool, as_json: bool) -> None:
    from decisionops.agent.cli.approvals import registered_user

    with runtime() as rt:
        by = registered_user(rt, name)
        try:
            state = (rt.approvals.autonomy.revoke if revoke else rt.approvals.autonomy.reinstate)(
                key, by=by, reason=reason)
        except DecisionOpsError as exc:
            raise fail(exc.message, exc.exit_code) from None
    if as_json:
        print_json(state.to_dict())
        return
    console.print(f"{state.key}: {state.state} by {state.changed_by} ({state.reason})",
                  markup=False, highlight=False)


@autonomy_app.command("rebuild")
def rebuild(as_json: Json = False) -> None:
    """Derive the class record again from every answered approval request, with today's
    function policies: after a policy's limits changed (its classes band other arguments),
    or on a store from before earned autonomy. Promotions and demotions stay as they are.

    Example: decisionops policy autonomy rebuild
    """
    with runtime() as rt:
        recorded = rt.approvals.autonomy.rebuild()
        classes = len(rt.store.autonomy.keys())
    if as_json:
        print_json({"class_answers": recorded, "classes": classes})
        return
    console.print(f"rebuilt: {recorded} class answers in {classes} classes")


@autonomy_app.command("revoke")
def revoke(key: Annotated[str, typer.Argument(help="The class, as policy autonomy lists it.")],
           name: As, reason: Annotated[str, typer.Option(help="Why; recorded.")] = "",
           as_json: Json = False) -> None:
    """Take a promotion back: the class's steps go to people again until a person
    reinstates it (the record alone does not promote it again).

    Example: decisionops policy autonomy revoke "$CLASS" --as dana@finance --reason audit

    (CLASS as policy autonomy lists it, e.g.
    finance/churn-retention/goodwill_credit/finance.issue_credit[amount≤256])
    """
    _change(key, name, reason, revoke=True, as_json=as_json)


@autonomy_app.command("reinstate")
def reinstate(key: Annotated[str, typer.Argument(help="The class, as policy autonomy lists it.")],
              name: As, reason: Annotated[str, typer.Option(help="Why; recorded.")] = "",
              as_json: Json = False) -> None:
    """Promote a demoted or revoked class again (refused while its outcomes are worse
    than the control group's).

    Example: decisionops policy autonomy reinstate "$CLASS" --as dana@finance
    """
    _change(key, name, reason, revoke=False, as_json=as_json)
