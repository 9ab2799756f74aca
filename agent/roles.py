"""What each user role may do: the one table the API, the web pages and the CLI's
``--as`` consult (``decisionops users add NAME --role ROLE``)."""

from __future__ import annotations

from typing import Literal

__all__ = ["ROLES", "Permission", "may", "roles_that"]

ROLES = ("approver", "operator", "ingest", "admin")

Permission = Literal["read", "ingest", "outcomes", "report", "answer", "control", "chat"]
"""``outcomes``: record them; ``report``: read every outcome and the value report (figures
across all decisions, beyond what an approver's functions show them)."""

_GRANTS: dict[str, frozenset[str]] = {
    "approver": frozenset({"read", "answer", "chat"}),
    "operator": frozenset({"read", "ingest", "outcomes", "report", "control", "chat"}),
    "ingest": frozenset({"ingest", "outcomes"}),
    "admin": frozenset({"read", "ingest", "outcomes", "report", "control", "chat"}),
}


def may(role: str, permission: Permission) -> bool:
    """Whether a user of ``role`` may ``permission``."""
    return permission in _GRANTS.get(role, frozenset())


def roles_that(permission: Permission) -> list[str]:
    """The roles that may ``permission``, in ``ROLES`` order."""
    return [role for role in ROLES if may(role, permission)]
