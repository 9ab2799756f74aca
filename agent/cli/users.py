"""``decisionops users``: API users and their tokens (for the HTTP API and web inbox)."""

from __future__ import annotations

import getpass
from typing import Annotated, Any

import typer

from decisionops.agent.cli._common import console, fail, print_json, print_table, runtime
from decisionops.agent.errors import InvalidInputError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="API users and tokens: add, email, functions, list, token, revoke."
                  "\n\nExample: decisionops users add dana --role approver --function finance")

Name = Annotated[str, typer.Argument(help="User name, e.g. dana (approvers: as in the function "
                                          "policies, with or without @function).")]
Json = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
Expires = Annotated[float | None, typer.Option(
    "--expires-days", min=0.001, help="The token stops working after this many days.")]


def _user(rt: Any, name: str) -> str:
    """The full name of the user ``name`` means (``dana`` for ``dana@finance``, as
    ``--as`` reads it); refused naming ``name`` when there is none or several."""
    try:
        user = rt.store.users.named(name)
    except InvalidInputError as exc:
        raise fail(exc.message.removeprefix("name: "), field="name") from None
    if user is None:
        raise fail(f"no user {name!r} (decisionops users list)", field="name")
    return str(user["name"])


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _show_token(name: str, token: str, token_id: str, as_json: bool, extra: dict) -> None:
    if as_json:
        print_json({"name": name, "token": token, "token_id": token_id, **extra})
        return
    console.print(f"{name}: token {token_id} issued. The token is shown once; store it now:")
    console.print(token, highlight=False, markup=False, soft_wrap=True)


@app.command("add")
def add(name: Name,
        role: Annotated[str, typer.Option(help="approver, operator, ingest or admin.")],
        function: Annotated[list[str] | None, typer.Option(
            "--function", help="A function this approver approves; repeatable.")] = None,
        expires_days: Expires = None,
        email: Annotated[str | None, typer.Option(
            help="Where this approver gets approval notifications (SMTP).")] = None,
        as_json: Json = False) -> None:
    """Add a user and print their first token (once).

    Example: decisionops users add dana --role approver --function finance
    --email dana@example.com
    """
    from decisionops.agent.api import add_user

    with runtime() as rt:
        token, token_id = add_user(rt, name, role=role, functions=function or [],
                                   actor=_actor(), expires_days=expires_days, email=email)
    _show_token(name, token, token_id, as_json, {"role": role, "functions": function or []})


@app.command("token")
def token(name: Name, expires_days: Expires = None, as_json: Json = False) -> None:
    """Issue another token for a user (rotation: revoke the old user's tokens after).

    Example: decisionops users token dana --expires-days 90
    """
    from decisionops.agent.api import issue_token

    with runtime() as rt:
        name = _user(rt, name)
        value, token_id = issue_token(rt, name, actor=_actor(), expires_days=expires_days)
    _show_token(name, value, token_id, as_json, {})


@app.command("email")
def email(name: Name, address: Annotated[str | None, typer.Argument(
        help="E-mail address; leave out to clear it.")] = None, as_json: Json = False) -> None:
    """Set where a user gets approval notifications (or clear it).

    Example: decisionops users email dana dana@example.com
    """
    with runtime() as rt:
        name = _user(rt, name)
        rt.store.users.set_email(name, address, actor=_actor())
    if as_json:
        print_json({"name": name, "email": address})
        return
    console.print(f"{name}: e-mail {address or 'cleared'}")


@app.command("functions")
def functions(name: Name, function: Annotated[list[str] | None, typer.Option(
        "--function", help="A function this approver approves; repeatable. The list "
        "replaces the one they have.")] = None, as_json: Json = False) -> None:
    """Change the functions an approver approves (each must list them in the function
    policies, as for 'users add'); effective at once, recorded in the ledger.

    Example: decisionops users functions dana --function finance --function sales
    """
    from decisionops.agent.api import set_functions

    with runtime() as rt:
        name = _user(rt, name)
        now, before = set_functions(rt, name, function or [], actor=_actor())
    if as_json:
        print_json({"name": name, "functions": now, "previous": before})
        return
    console.print(f"{name} approves {', '.join(now)} (was {', '.join(before) or 'none'})")


@app.command("list")
def list_(as_json: Json = False) -> None:
    """List users, their roles, functions and live tokens.

    Example: decisionops users list --json
    """
    with runtime() as rt:
        rows = rt.store.users.list()
    if as_json:
        print_json(rows)
        return
    print_table("users", ["name", "role", "functions", "e-mail", "live tokens", "created",
                          "disabled"],
                [[u["name"], u["role"], ", ".join(u["functions"]), u["email"] or "",
                  u["active_tokens"],
                  f"{u['created_at']:%Y-%m-%d}", u["disabled_at"] and f"{u['disabled_at']:%Y-%m-%d}"]
                 for u in rows], empty="no users yet: decisionops users add NAME --role ...")


@app.command("enable")
def enable(name: Name, as_json: Json = False) -> None:
    """Enable a user 'users revoke' disabled; their old tokens stay revoked: issue a new
    one with 'users token'.

    Example: decisionops users enable dana
    """
    with runtime() as rt:
        name = _user(rt, name)
        rt.store.users.enable(name, actor=_actor())
    if as_json:
        print_json({"name": name, "enabled": True})
        return
    console.print(f"{name} enabled; their old tokens stay revoked: decisionops users token "
                  f"{name}")


@app.command("revoke")
def revoke(name: Name, as_json: Json = False) -> None:
    """Disable a user and revoke all their tokens (their web sessions end too).

    Example: decisionops users revoke dana
    """
    with runtime() as rt:
        name = _user(rt, name)
        count = rt.store.users.revoke(name, actor=_actor())
    if as_json:
        print_json({"name": name, "tokens_revoked": count})
        return
    console.print(f"{name} disabled; {count} token(s) revoked")
