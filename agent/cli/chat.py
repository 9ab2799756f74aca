"""``decisionops chat``: the ops chat in the terminal (same commands and tools as the web
chat; common questions in free phrasing work without an LLM, anything else needs
DECISIONOPS_LLM_BASE_URL)."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from decisionops.agent.cli._common import console, fail, runtime

__all__ = ["chat"]


def chat(message: Annotated[str | None, typer.Option(
             "--message", "-m", help="Send one message, print the reply, exit.")] = None,
         token: Annotated[str | None, typer.Option(
             envvar="DECISIONOPS_TOKEN", help="Chat as this API user (else as the local "
                                              "operator).")] = None) -> None:
    """Talk to the agent: pending approvals, explain a decision, why an entity; operators
    also hold and release.

    Examples: decisionops chat -m "pending finance"
              decisionops chat -m "why didn't we act on ACC-10004?"
    """
    from decisionops.agent.api._auth import Unauthenticated, principal_from_token
    from decisionops.agent.chat import ChatService, ChatUser

    with runtime() as rt:
        if token:
            try:
                who = principal_from_token(rt.store, token.strip())
            except Unauthenticated:
                raise fail("--token: not a valid token (revoked, expired or mistyped)") from None
            user = ChatUser(who.name, who.role, who.functions)
        else:
            # Whoever runs the CLI can read the database directly: the local operator.
            try:
                login = getpass.getuser()
            except (KeyError, OSError):
                login = "local"
            user = ChatUser(f"local:{login}", "operator")
        service = ChatService(rt, rt.settings)
        try:
            if message is not None:
                console.print(service.reply(user, message).reply, markup=False, highlight=False)
                return
            console.print(f"DecisionOps chat as {user.name} ({service.mode}); 'help' for "
                          "commands, Ctrl-D to leave.")
            for line in sys.stdin if not sys.stdin.isatty() else iter(lambda: _ask(), None):
                text = line.strip()
                if text in ("exit", "quit"):
                    break
                if text:
                    console.print(service.reply(user, text).reply, markup=False,
                                  highlight=False)
        finally:
            service.close()


def _ask() -> str | None:
    try:
        return input("> ")
    except EOFError:
        return None
