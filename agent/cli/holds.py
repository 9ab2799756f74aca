"""``decisionops holds``: pause acting on an entity, a playbook, a business function or
one decision.

A hold is the approval service's (``agent.approvals``): while it is in force, triage
drops new predictions about a held entity or playbook, workers apply no recorded answer
and start no step for work it covers; releasing it lets that work carry on. Placing
and releasing are ledger entries.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated

import typer

from decisionops.agent.cli._common import console, fail, print_json, print_table, runtime
from decisionops.agent.errors import InvalidInputError, NotFoundError, status_for

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Operator holds: add, list, release.\n\n"
                  "Example: decisionops holds add ACC-10023 --until +2d --reason 'disputed invoice'")

Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@app.command("add")
def add(target: Annotated[str, typer.Argument(
            help="An entity id (ACC-10023), a playbook (churn-retention), a business "
                 "function (finance) or a decision id.")],
        until: Annotated[str, typer.Option(help="Until when: a date (2026-12-01), a time "
                                                "(2026-12-01T09:00Z) or relative (+4h, +2d).")],
        reason: Annotated[str, typer.Option(help="Why; recorded and shown.")] = "",
        as_json: Json = False) -> None:
    """Hold an entity, playbook, function or decision until a time.

    Example: decisionops holds add finance --until +1d --reason "month-end close"
    """
    from decisionops.agent.chat._commands import parse_when

    try:
        when = parse_when(until, datetime.now(UTC))
    except InvalidInputError as exc:
        raise _refused(exc) from None
    with runtime() as rt:
        try:
            hold = rt.approvals.hold(target, until=when, reason=reason or "operator hold",
                                     actor=_actor())
        except InvalidInputError as exc:
            raise _refused(exc) from None
    if as_json:
        print_json(hold.to_dict())
        return
    console.print(f"hold #{hold.id} on {hold.target_type} {hold.target} until "
                  f"{hold.until:%Y-%m-%d %H:%M}Z")


@app.command("list")
def list_(all_: Annotated[bool, typer.Option("--all", help="Released and expired too.")] = False,
          as_json: Json = False) -> None:
    """List holds (active ones unless --all).

    Example: decisionops holds list --json
    """
    with runtime() as rt:
        rows = rt.store.holds.list(active_only=not all_)
    if as_json:
        print_json([h.to_dict() for h in rows])
        return
    print_table("holds", ["id", "type", "target", "until", "reason", "by", "released"],
                [[h.id, h.target_type, h.target, f"{h.until:%Y-%m-%d %H:%M}", h.reason,
                  h.created_by, h.released_at and f"{h.released_at:%Y-%m-%d %H:%M}"]
                 for h in rows], empty="no active holds")


@app.command("release")
def release(target: Annotated[str, typer.Argument(
                help="The held entity, playbook, function or decision, or a hold's number "
                     "(#3, as holds list shows it).")],
            as_json: Json = False) -> None:
    """Release the active holds on a target (or one hold by its number); the work they
    held carries on.

    Example: decisionops holds release ACC-10023

    Example: decisionops holds release '#3'
    """
    with runtime() as rt:
        try:
            released = rt.approvals.release_holds(target, actor=_actor())
        except NotFoundError as exc:
            raise _refused(exc) from None
    ids = [h.id for h in released]
    # what a numbered hold was on, said (a number is not the thing held)
    held = released[0] if target.startswith("#") else None
    if as_json:
        print_json({"target": held.target if held else target, "released": ids})
        return
    on = f"{held.target_type} {held.target}" if held else target
    console.print(f"released {', '.join(f'#{i}' for i in ids)} on {on}")


def _refused(exc: InvalidInputError | NotFoundError) -> typer.Exit:
    """The service's refusal, ``until`` named as the option that gives it (``--until``)."""
    field = exc.details.get("field")
    if field == "until":
        return fail(f"--until: {exc.message.removeprefix('until: ')}", field="--until")
    return fail(exc.message.removeprefix(f"{field}: "), exc.exit_code, status=status_for(exc),
                field=field)
