"""What each user role may do: the one table the API, the web pages and the CLI's
``--as`` consult (``decisionops users add NAME --role ROLE``)."""

from __future__ import annotations

from typing import Literal

__all__ = ["ROLES", "Permission", "may", "roles_that"]

ROLES = ("approver", "operator", "ingest", "admin")

Permission = Literal["read", "ingest", "outcomes", "answer", "control", "chat"]

_GRANTS: dict[str, frozenset[str]] = {
    "approver": frozenset({"read", "answer", "chat"}),
    "operator": frozenset({"read", "ingest", "outcomes", "control", "chat"}),
    "ingest": frozenset({"ingest", "outcomes"}),
    "admin": frozenset({"read", "ingest", "outcomes", "control", "chat"}),
}


def may(role: str, permission: Permission) -> bool:
    """Whether a user of ``role`` may ``permission``."""
    return permission in _GRANTS.get(role, frozenset())


def roles_that(permission: Permission) -> list[str]:
    """The roles that may ``permission``, in ``ROLES`` order."""
    return [role for role in ROLES if may(role, permission)]
