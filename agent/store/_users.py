"""Users and their API tokens (``Store.users``).

Tokens are stored as SHA-256 digests only: the token itself is shown once, when issued,
and never written anywhere. Every change to who may do what (user created or disabled,
token issued or revoked, e-mail address set) appends a ledger entry in the same
transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from decisionops.agent.errors import ConflictError, InvalidInputError, NotFoundError
from decisionops.agent.hashing import short_id
from decisionops.agent.models import utcnow
from decisionops.agent.store import _service_tables as s
from decisionops.agent.store._db import Repo
from decisionops.agent.store.ledger import Event


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


__all__ = ["EMAIL", "UserRepo"]

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _check_email(email: str | None) -> None:
    if email is not None and not EMAIL.match(email):
        raise InvalidInputError(f"{email!r} is not an e-mail address", field="email")


class UserRepo(Repo):
    def create(self, name: str, *, role: str, functions: Sequence[str], actor: str,
               email: str | None = None) -> None:
        _check_email(email)
        now = utcnow()
        with self.transaction(durable=True) as conn:
            if conn.scalar(select(s.users.c.name).where(s.users.c.name == name)):
                raise ConflictError(f"user {name!r} exists already (decisionops users token "
                                    f"{name} issues them a new token)", field="name")
            conn.execute(insert(s.users).values(name=name, role=role, functions=list(functions),
                                                created_at=now, created_by=actor, email=email))
            self.record(conn, [Event(actor=actor, event="user.created",
                                     body={"user": name, "role": role,
                                           "functions": list(functions)})], now)

    def set_email(self, name: str, email: str | None, *, actor: str) -> None:
        """Set (or with None, clear) where ``name`` gets approver notifications."""
        _check_email(email)
        now = utcnow()
        with self.transaction(durable=True) as conn:
            done = conn.execute(update(s.users).where(s.users.c.name == name)
                                .values(email=email))
            if done.rowcount != 1:
                raise NotFoundError(f"no user {name!r}", field="name")
            self.record(conn, [Event(actor=actor, event="user.email_set",
                                     body={"user": name, "email": email})], now)

    def set_functions(self, name: str, functions: Sequence[str], *, actor: str) -> list[str]:
        """Set the functions ``name`` approves (checked by the caller against the
        policies); returns the ones before."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            previous = conn.scalar(select(s.users.c.functions).where(s.users.c.name == name))
            if previous is None:
                raise NotFoundError(f"no user {name!r}", field="name")
            conn.execute(update(s.users).where(s.users.c.name == name)
                         .values(functions=list(functions)))
            self.record(conn, [Event(actor=actor, event="user.functions_set",
                                     body={"user": name, "functions": list(functions),
                                           "previous": list(previous)})], now)
        return list(previous)

    def get(self, name: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(s.users).where(s.users.c.name == name)).first()
        return _row(row) if row else None

    def registered(self, name: str) -> bool:
        """Whether a user of exactly ``name`` is registered, enabled or not (who a short
        name may stand for: ``agent.approvals.policy_identity``)."""
        with self.reading() as conn:
            return conn.scalar(select(s.users.c.name).where(s.users.c.name == name)) is not None

    def named(self, name: str) -> dict[str, Any] | None:
        """The user a person means by ``name``: the one of that name, else, for a name
        without ``@``, the one user whose name starts ``name@`` (``dana`` for
        ``dana@finance``). None when there is none; ``InvalidInputError`` (field
        ``name``) when several are."""
        user = self.get(name)
        if user is not None or "@" in name:
            return user
        with self.reading() as conn:
            rows = [_row(r) for r in conn.execute(
                select(s.users).where(s.users.c.name.startswith(f"{name}@", autoescape=True))
                .order_by(s.users.c.name))]
        if len(rows) > 1:
            raise InvalidInputError(f"{name!r} could be {', '.join(u['name'] for u in rows)}: "
                                    "name one", field="name")
        return rows[0] if rows else None

    def list(self) -> list[dict[str, Any]]:
        with self.reading() as conn:
            tokens = dict(conn.execute(  # type: ignore[arg-type]
                select(s.api_tokens.c.user_name, func.count())
                .where(s.api_tokens.c.revoked_at.is_(None))
                .group_by(s.api_tokens.c.user_name)).all())
            rows = [_row(r) for r in conn.execute(select(s.users).order_by(s.users.c.name))]
        for row in rows:
            row["active_tokens"] = tokens.get(row["name"], 0)
        return rows

    def issue_token(self, user: str, *, token_hash: str, expires_at: datetime | None,
                    actor: str) -> str:
        """Store a token's digest for ``user``; returns the token id (not the token)."""
        now = utcnow()
        token_id = short_id("tok", token_hash, length=16)
        with self.transaction(durable=True) as conn:
            row = conn.execute(select(s.users.c.disabled_at).where(s.users.c.name == user)).first()
            if row is None:
                raise NotFoundError(f"no user {user!r}", field="name")
            if row.disabled_at is not None:
                raise ConflictError(f"user {user!r} is disabled", field="name")
            conn.execute(insert(s.api_tokens).values(id=token_id, user_name=user,
                                                     token_hash=token_hash, created_at=now,
                                                     expires_at=expires_at))
            self.record(conn, [Event(actor=actor, event="token.issued",
                                     body={"user": user, "token_id": token_id,
                                           "expires_at": expires_at.isoformat()
                                           if expires_at else None})], now)
        return token_id

    def revoke(self, name: str, *, actor: str) -> int:
        """Disable the user and revoke every token; returns the number of tokens revoked."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            if not conn.scalar(select(s.users.c.name).where(s.users.c.name == name)):
                raise NotFoundError(f"no user {name!r}", field="name")
            revoked = conn.execute(update(s.api_tokens).where(
                s.api_tokens.c.user_name == name, s.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)).rowcount
            conn.execute(update(s.users).where(s.users.c.name == name,
                                               s.users.c.disabled_at.is_(None))
                         .values(disabled_at=now))
            self.record(conn, [Event(actor=actor, event="user.disabled",
                                     body={"user": name, "tokens_revoked": revoked})], now)
        return revoked

    def enable(self, name: str, *, actor: str) -> None:
        """Enable a disabled user again; the tokens revoked with it stay revoked."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            row = conn.execute(select(s.users.c.disabled_at).where(s.users.c.name == name)
                               ).first()
            if row is None:
                raise NotFoundError(f"no user {name!r}", field="name")
            if row.disabled_at is None:
                raise ConflictError(f"user {name!r} is not disabled", field="name")
            conn.execute(update(s.users).where(s.users.c.name == name)
                         .values(disabled_at=None))
            self.record(conn, [Event(actor=actor, event="user.enabled", body={"user": name})],
                        now)

    def principal(self, *, token_hash: str | None = None, token_id: str | None = None
                        ) -> tuple[str, dict[str, Any]] | None:
        """(token id, user row) for a live token of an enabled user, else None."""
        now = utcnow()
        query = (select(s.api_tokens.c.id, s.api_tokens.c.expires_at, s.users)
                 .join(s.users, s.users.c.name == s.api_tokens.c.user_name)
                 .where(s.api_tokens.c.revoked_at.is_(None), s.users.c.disabled_at.is_(None)))
        if token_hash is not None:
            query = query.where(s.api_tokens.c.token_hash == token_hash)
        elif token_id is not None:
            query = query.where(s.api_tokens.c.id == token_id)
        else:
            return None
        with self.reading() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        data = _row(row)
        expires = data.pop("expires_at")
        if expires is not None and expires <= now:
            return None
        return str(data.pop("id")), data

