"""Credentials: API tokens, the web session cookie, CSRF, and what each role may do.

* A token is ``dops_`` + 32 random bytes (URL-safe base64). Only its SHA-256 digest is
  stored; the token is shown once when issued (``decisionops users add``).
* ``Authorization: Bearer <token>`` authenticates API calls. The web inbox exchanges a
  token for a session cookie (``HttpOnly``, ``SameSite=Strict``) that is signed, expires,
  names the token (revoking the token ends the session) and carries a CSRF secret;
  unsafe requests authenticated by the cookie must echo it (``X-CSRF-Token`` header or
  ``csrf_token`` form field).
* Roles: ``approver`` (answers approvals of its functions; reads), ``operator`` (reads
  everything, outcomes, ingest, ops-chat control tools), ``ingest`` (predictions and
  outcomes only), ``admin`` (everything an operator may). Only approvers answer approvals.

Not here: per-approval checks (function, four-eyes, stale plan): ``_approvals``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from decisionops.agent.approvals import SEES_ALL
from decisionops.agent.errors import PermissionDenied
from decisionops.agent.roles import ROLES, Permission, may
from decisionops.agent.store import Store

__all__ = [
    "ROLES",
    "SESSION_COOKIE",
    "Permission",
    "Principal",
    "SessionSigner",
    "Unauthenticated",
    "csrf_ok",
    "hash_token",
    "new_token",
    "principal_from_token",
]

SESSION_COOKIE = "dops_session"
TOKEN_PREFIX = "dops_"


class Unauthenticated(Exception):
    """No valid credential: answered with 401 (never with the reason a token failed)."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by their credential (never by the request body)."""

    name: str
    role: str
    functions: tuple[str, ...]
    token_id: str
    via: Literal["token", "session"]
    csrf: str | None = None
    """The session's CSRF secret (cookie sessions only)."""

    def may(self, permission: Permission) -> bool:
        return may(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.may(permission):
            # The reason the approval service gives an answer from one who is no approver,
            # so bulk approve and validate refuse as a single answer does (trial 19).
            raise PermissionDenied(f"{self.name} ({self.role}) may not {permission}",
                                   reason="not_an_approver" if permission == "answer"
                                   else "not_permitted")

    @property
    def sees_all(self) -> bool:
        return self.role in SEES_ALL


def principal_from_token(store: Store, token: str) -> Principal:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated()
    found = store.users.principal(token_hash=hash_token(token))
    if found is None:
        raise Unauthenticated()
    token_id, user = found
    return Principal(user["name"], user["role"], tuple(user["functions"]), token_id, "token")


class SessionSigner:
    """Signs and reads the session cookie: ``{token id, csrf secret}`` with a timestamp."""

    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="decisionops-session")
        self.max_age = max_age_seconds

    def issue(self, token_id: str) -> tuple[str, str]:
        """(cookie value, csrf secret)."""
        csrf = secrets.token_urlsafe(24)
        return self._serializer.dumps({"t": token_id, "c": csrf}), csrf

    def principal(self, store: Store, cookie: str) -> Principal:
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            raise Unauthenticated() from None
        if not isinstance(data, dict) or not isinstance(data.get("t"), str):
            raise Unauthenticated()
        found = store.users.principal(token_id=data["t"])
        if found is None:
            raise Unauthenticated()
        token_id, user = found
        return Principal(user["name"], user["role"], tuple(user["functions"]), token_id,
                         "session", csrf=str(data.get("c") or ""))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF secret with the echoed one."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
