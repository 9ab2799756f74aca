"""Who answers an approval: an ``Approver``, established by the channel from a
credential (an API token, a web session) or, on the CLI, from a registered user's name
(``decisionops users add``) — never from the answer itself.

The function policies stay the authority on who approves what: a user approves a
function when the policy lists them, by their exact name (``dana@finance``) or by the
part before ``@`` (``dana``) while no user of the whole name is registered (that
person answers as themselves; revoked, through nobody). ``policy_identity`` maps one
onto the other; ``alias_clash`` keeps both names from being registered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["SEES_ALL", "Approver", "Channel", "alias_clash", "policy_identity",
           "visible_functions"]

Channel = Literal["api", "web", "hitl", "cli", "chat", "webhook", "langgraph"]

SEES_ALL = frozenset({"operator", "admin"})
"""Roles that see every function's requests and records; an approver sees their own."""


@dataclass(frozen=True)
class Approver:
    name: str
    """The user's name (as registered)."""
    role: str
    """``approver``, ``operator``, ``ingest`` or ``admin``: only approvers answer."""
    functions: tuple[str, ...]
    """The functions the user was registered to approve."""
    channel: Channel
    """Where the answer came from; recorded with it."""


def policy_identity(approvers: Sequence[str], name: str, *,
                    registered: Callable[[str], bool]) -> str | None:
    """The approver entry of a policy that ``name`` stands for, or None. ``registered``:
    whether a user of a name is registered (enabled or not): a short name stands for an
    entry only while nobody is registered under the entry itself."""
    if name in approvers:
        return name
    for entry in approvers:
        if entry.partition("@")[0] == name:
            return None if registered(entry) else entry
    return None


def alias_clash(name: str, approvers: Sequence[str], *,
                registered: Callable[[str], bool]) -> str | None:
    """The registered user that ``name`` would share an approver entry with (``dana``
    and ``dana@finance``), or None: one person, one name."""
    for entry in approvers:
        short = entry.partition("@")[0]
        if short == entry:
            continue
        if name == entry and registered(short):
            return short
        if name == short and registered(entry):
            return entry
    return None


class Viewer(Protocol):
    """Whoever reads: an ``Approver``, or a channel's credential (the API's principal)."""

    @property
    def role(self) -> str: ...
    @property
    def functions(self) -> tuple[str, ...]: ...


def visible_functions(viewer: Viewer | None) -> tuple[str, ...] | None:
    """The functions whose requests and records ``viewer`` may see; None: every one
    (an operator, an admin, or no viewer: the local CLI, which runs as the operator)."""
    if viewer is None or viewer.role in SEES_ALL:
        return None
    return viewer.functions
