"""Creating users and issuing their tokens (used by ``decisionops users`` and tests).

A user is a name and one role. An approver names the functions it approves, and must be
listed among those functions' approvers in the function policies, either by its exact
name (``dana@finance``) or by the part before ``@`` (``dana``): the policies stay the one
authority on who approves what; the users table only maps credentials onto them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from decisionops.agent.api._auth import ROLES, hash_token, new_token
from decisionops.agent.approvals import alias_clash, policy_identity
from decisionops.agent.errors import InvalidInputError, NotFoundError
from decisionops.agent.models import USER_NAME_RULE, is_user_name, utcnow
from decisionops.agent.runtime import Runtime

__all__ = ["add_user", "issue_token"]



def issue_token(rt: Runtime, name: str, *, actor: str, expires_days: float | None = None
                ) -> tuple[str, str]:
    """A new token for an existing user: (token, token id). Only the digest is stored."""
    token = new_token()
    expires = utcnow() + timedelta(days=expires_days) if expires_days else None
    token_id = rt.store.users.issue_token(name, token_hash=hash_token(token), expires_at=expires,
                                    actor=actor)
    return token, token_id


def add_user(rt: Runtime, name: str, *, role: str, functions: Sequence[str] = (), actor: str,
             expires_days: float | None = None, email: str | None = None) -> tuple[str, str]:
    """Create the user and its first token: (token, token id). ``email``: where the
    user gets approver notifications."""
    if not is_user_name(name):
        raise InvalidInputError(f"must be {USER_NAME_RULE}", field="name")
    if role not in ROLES:
        raise InvalidInputError(f"{role!r} is not one of {', '.join(ROLES)}", field="role")
    _one_name(rt, name)
    functions = _functions(rt, name, role, functions)
    rt.store.users.create(name, role=role, functions=functions, actor=actor, email=email)
    return issue_token(rt, name, actor=actor, expires_days=expires_days)


def set_functions(rt: Runtime, name: str, functions: Sequence[str], *, actor: str
                  ) -> tuple[list[str], list[str]]:
    """Change the functions an approver approves, checked as ``add_user`` checks them:
    (the functions now, before). It takes effect at once: an answer is checked against
    the user as stored when it is given, and their pending requests are listed by it."""
    user = rt.store.users.get(name)
    if user is None:
        raise NotFoundError(f"no user {name!r} (decisionops users list)", field="name")
    if user["role"] != "approver":
        raise InvalidInputError(f"only approvers have functions ({name} is {user['role']}, "
                                "which sees every function it may)", field="function")
    functions = _functions(rt, name, user["role"], functions)
    return functions, rt.store.users.set_functions(name, functions, actor=actor)


def _one_name(rt: Runtime, name: str) -> None:
    """Refuse ``name`` when it and a registered user are one approver entry's two names
    (``dana`` and ``dana@finance``): each would answer as that entry, and revoking
    one would leave the other answering."""
    for function, policy in sorted(rt.policies.functions.items()):
        entries = [*policy.approvers, *([policy.escalate_to] if policy.escalate_to else [])]
        if (other := alias_clash(name, entries, registered=rt.store.users.registered)) is not None:
            entry = name if "@" in name else other
            raise InvalidInputError(
                f"{name} and the registered user {other} would both be {function}'s "
                f"approver {entry}: register one person under one name", field="name")


def _functions(rt: Runtime, name: str, role: str, functions: Sequence[str]) -> list[str]:
    """The functions a user of ``role`` named ``name`` may be registered for: an approver
    at least one, each a function whose policy lists them; other roles none."""
    functions = list(dict.fromkeys(functions))
    if role == "approver" and not functions:
        raise InvalidInputError("an approver needs at least one --function", field="function")
    if role != "approver" and functions:
        raise InvalidInputError(f"only approvers have functions ({role} sees every function "
                                "it may)", field="function")
    for function in functions:
        policy = rt.policies.get(function)
        if policy_identity(policy.approvers, name, registered=rt.store.users.registered) is None:
            raise InvalidInputError(
                f"{name} is not an approver of {function} in the function policies "
                f"(approvers: {', '.join(policy.approvers)}); add them there first",
                field="function")
    return functions
