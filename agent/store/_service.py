"""Reads and writes of the service layer: users and API tokens, webhook deliveries,
chat conversations, operator holds, four-eyes edit proposals, and ledger records of
refused requests. Mixed into ``Store``; not used on its own.

Tokens are stored as SHA-256 digests only: the token itself is shown once, when issued,
and never written anywhere. Every change to who may do what (user created or disabled,
token issued or revoked, hold placed or released) appends a ledger entry in the same
transaction. Tables are in ``_service_tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from agent.errors import ConflictError, NotFoundError
from agent.hashing import short_id
from agent.models import utcnow
from agent.store import _service_tables as s
from agent.store import _tables as t
from agent.store._archive import archived_entries, search_filter
from agent.store._part import StorePart
from agent.store._references import hydrate_requests
from agent.store.ledger import Event, LedgerEntry, snapshot

__all__ = ["ActiveHolds", "ServiceRecords"]


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


@dataclass(frozen=True)
class ActiveHolds:
    """Holds in force at one moment: target → (hold id, until)."""

    entities: dict[str, tuple[int, datetime]]
    playbooks: dict[str, tuple[int, datetime]]

    def match(self, entity_id: str, playbook: str | None) -> str | None:
        """Why a prediction about ``entity_id`` answered by ``playbook`` is held, or None."""
        if entity_id in self.entities:
            hold_id, until = self.entities[entity_id]
            return f"entity {entity_id} is on hold #{hold_id} until {until:%Y-%m-%d %H:%M}Z"
        if playbook is not None and playbook in self.playbooks:
            hold_id, until = self.playbooks[playbook]
            return f"playbook {playbook} is on hold #{hold_id} until {until:%Y-%m-%d %H:%M}Z"
        return None


class ServiceRecords(StorePart):
    # ------------------------------------------------------------------ users & tokens

    def create_user(self, name: str, *, role: str, functions: Sequence[str], actor: str) -> None:
        now = utcnow()
        with self.transaction(durable=True) as conn:
            if conn.scalar(select(s.users.c.name).where(s.users.c.name == name)):
                raise ConflictError(f"user {name!r} exists already", field="name")
            conn.execute(insert(s.users).values(name=name, role=role, functions=list(functions),
                                                created_at=now, created_by=actor))
            self.record(conn, [Event(actor=actor, event="user.created",
                                     body={"user": name, "role": role,
                                           "functions": list(functions)})], now)

    def user(self, name: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(s.users).where(s.users.c.name == name)).first()
        return _row(row) if row else None

    def users(self) -> list[dict[str, Any]]:
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

    def revoke_user(self, name: str, *, actor: str) -> int:
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

    def token_principal(self, *, token_hash: str | None = None, token_id: str | None = None
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

    # ------------------------------------------------------------------ webhooks

    def claim_delivery(self, delivery_id: str, *, body_sha256: str) -> dict[str, Any] | None:
        """Record a webhook delivery as received. Returns None when it is new (the caller
        processes it), else the stored delivery (a replay)."""
        now = utcnow()
        try:
            with self.transaction(durable=True) as conn:
                row = conn.execute(select(s.webhook_deliveries).where(
                    s.webhook_deliveries.c.delivery_id == delivery_id)).first()
                if row is not None:
                    return _row(row)
                conn.execute(insert(s.webhook_deliveries).values(
                    delivery_id=delivery_id, body_sha256=body_sha256, received_at=now))
        except IntegrityError:
            # A concurrent delivery with the same id won the insert.
            return self.delivery(delivery_id)
        return None

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(s.webhook_deliveries).where(
                s.webhook_deliveries.c.delivery_id == delivery_id)).first()
        return _row(row) if row else None

    def forget_delivery(self, delivery_id: str) -> None:
        """Drop an unfinished claim (processing failed), so a retry is processed."""
        with self.transaction() as conn:
            conn.execute(s.webhook_deliveries.delete().where(
                s.webhook_deliveries.c.delivery_id == delivery_id,
                s.webhook_deliveries.c.status_code.is_(None)))

    def finish_delivery(self, delivery_id: str, *, status_code: int,
                        response: dict[str, Any]) -> None:
        with self.transaction(durable=True) as conn:
            conn.execute(update(s.webhook_deliveries)
                         .where(s.webhook_deliveries.c.delivery_id == delivery_id)
                         .values(status_code=status_code, response=response))

    # ------------------------------------------------------------------ chat

    def conversation(self, user: str) -> str:
        """The user's conversation id (created on first use)."""
        with self.reading() as conn:
            found = conn.scalar(select(s.chat_conversations.c.id)
                                .where(s.chat_conversations.c.user_name == user)
                                .order_by(s.chat_conversations.c.updated_at.desc()).limit(1))
        if found:
            return str(found)
        now = utcnow()
        conv_id = short_id("chat", user, now.isoformat(), length=16)
        with self.transaction() as conn:
            conn.execute(insert(s.chat_conversations).values(id=conv_id, user_name=user,
                                                             created_at=now, updated_at=now))
        return conv_id

    def add_chat_messages(self, conversation_id: str,
                          messages: Sequence[tuple[str, str, dict[str, Any] | None]]) -> None:
        """Append (role, content, meta) messages to a conversation."""
        now = utcnow()
        with self.transaction() as conn:
            conn.execute(insert(s.chat_messages), [
                {"conversation_id": conversation_id, "role": role, "content": content,
                 "meta": meta, "at": now} for role, content, meta in messages])
            conn.execute(update(s.chat_conversations)
                         .where(s.chat_conversations.c.id == conversation_id)
                         .values(updated_at=now))

    def chat_messages(self, conversation_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first."""
        with self.reading() as conn:
            rows = [_row(r) for r in conn.execute(
                select(s.chat_messages).where(s.chat_messages.c.conversation_id == conversation_id)
                .order_by(s.chat_messages.c.id.desc()).limit(limit))]
        return rows[::-1]

    # ------------------------------------------------------------------ holds

    def add_hold(self, *, target_type: str, target: str, until: datetime, reason: str,
                 actor: str) -> int:
        now = utcnow()
        with self.transaction(durable=True) as conn:
            hold_id = conn.execute(insert(s.holds).values(
                target_type=target_type, target=target, until=until, reason=reason,
                created_by=actor, created_at=now)).inserted_primary_key[0]
            self.record(conn, [Event(actor=actor, event="hold.placed",
                                     body={"hold_id": hold_id, "target_type": target_type,
                                           "target": target, "until": until.isoformat(),
                                           "reason": reason})], now)
        return int(hold_id)

    def release_holds(self, *, target: str, actor: str) -> list[int]:
        """Release every active hold on ``target`` (entity or playbook); returns their ids."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            ids = list(conn.scalars(select(s.holds.c.id).where(
                s.holds.c.target == target, s.holds.c.released_at.is_(None),
                s.holds.c.until > now)))
            if ids:
                conn.execute(update(s.holds).where(s.holds.c.id.in_(ids))
                             .values(released_at=now, released_by=actor))
                self.record(conn, [Event(actor=actor, event="hold.released",
                                         body={"hold_id": i, "target": target}) for i in ids], now)
        return ids

    def holds(self, *, active_only: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        query = select(s.holds).order_by(s.holds.c.id.desc()).limit(limit)
        if active_only:
            query = query.where(s.holds.c.released_at.is_(None), s.holds.c.until > utcnow())
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(query)]

    def active_holds(self, now: datetime | None = None) -> ActiveHolds:
        now = now or utcnow()
        entities: dict[str, tuple[int, datetime]] = {}
        playbooks: dict[str, tuple[int, datetime]] = {}
        with self.reading() as conn:
            rows = conn.execute(select(s.holds.c.id, s.holds.c.target_type, s.holds.c.target,
                                       s.holds.c.until)
                                .where(s.holds.c.released_at.is_(None), s.holds.c.until > now)
                                .order_by(s.holds.c.until))
            for hold_id, target_type, target, until in rows:
                into = entities if target_type == "entity" else playbooks
                into[target] = (hold_id, until)
        return ActiveHolds(entities, playbooks)

    # ------------------------------------------------------------------ approvals (service side)

    def propose_edit(self, *, approval_id: str, decision_id: str, plan_hash: str,
                     proposer: str, arguments: dict[str, Any], comment: str) -> None:
        """Record a four-eyes edit proposal (replacing an earlier one by anyone)."""
        now = utcnow()
        with self.transaction(durable=True) as conn:
            status = conn.scalar(select(t.approvals.c.status).where(
                t.approvals.c.id == approval_id, t.approvals.c.plan_hash == plan_hash))
            if status != "pending":
                raise ConflictError(f"approval {approval_id} is no longer pending for this "
                                    "plan version")
            conn.execute(s.edit_proposals.delete().where(
                s.edit_proposals.c.approval_id == approval_id))
            conn.execute(insert(s.edit_proposals).values(
                approval_id=approval_id, plan_hash=plan_hash, proposer=proposer,
                arguments=arguments, comment=comment, created_at=now))
            self.record(conn, [Event(actor=proposer, event="approval.edit_proposed",
                                     decision_id=decision_id, plan_hash=plan_hash,
                                     body={"approval_id": approval_id,
                                           "arguments": arguments, "comment": comment})], now)

    def edit_proposal(self, approval_id: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(s.edit_proposals).where(
                s.edit_proposals.c.approval_id == approval_id)).first()
        return _row(row) if row else None

    def plan_requesters(self, decision_id: str, plan_version: int) -> set[str]:
        """Who asked for this plan version: whoever submitted the prediction (version 1),
        or whoever asked for the revision that produced it (later versions)."""
        with self.reading() as conn:
            if plan_version <= 1:
                prediction_id = conn.scalar(select(t.decisions.c.prediction_id)
                                            .where(t.decisions.c.id == decision_id))
                return set(conn.scalars(select(t.ledger.c.actor).where(
                    t.ledger.c.event == "prediction.ingested",
                    t.ledger.c.body["prediction_id"].as_string() == prediction_id)))
            previous = [a for a in conn.execute(
                select(t.approvals.c.approver, t.approvals.c.status)
                .where(t.approvals.c.decision_id == decision_id,
                       t.approvals.c.plan_version == plan_version - 1))]
        return {a.approver for a in previous if a.status == "revise" and a.approver}

    def pending_inbox(self, functions: Sequence[str] | None, *, limit: int = 200
                      ) -> list[dict[str, Any]]:
        """Pending approvals of ``functions`` (None: all) joined with what ranks them:
        by the hour their SLA deadline falls in, soonest first, then the most value at
        stake (requests due within the same hour: the bigger one first)."""
        a, p, d = t.approvals, t.predictions, t.decisions
        query = (select(a.c.id, a.c.decision_id, a.c.function, a.c.plan_version, a.c.plan_hash,
                        a.c.reason, a.c.deadline, a.c.requested_at, a.c.request,
                        d.c.kind, d.c.entity_id, d.c.expected_value, p.c.score,
                        p.c.value_at_stake)
                 .join(d, d.c.id == a.c.decision_id).join(p, p.c.id == d.c.prediction_id)
                 .where(a.c.status == "pending")
                 .order_by(a.c.deadline, p.c.value_at_stake.desc(), a.c.id).limit(limit))
        if functions is not None:
            query = query.where(a.c.function.in_(list(functions)))
        with self.reading() as conn:
            rows = hydrate_requests(conn, (_row(r) for r in conn.execute(query)))
        far = datetime.max.replace(tzinfo=UTC)
        rows.sort(key=lambda r: ((r["deadline"] or far).replace(minute=0, second=0,
                                                                microsecond=0),
                                 -(r["value_at_stake"] or 0.0)))
        return rows

    def entity_predictions(self, entity_id: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest predictions about an entity with their triage verdict and decision."""
        p, d = t.predictions, t.decisions
        query = (select(p.c.id, p.c.kind, p.c.score, p.c.value_at_stake, p.c.observed_at,
                        p.c.triage_action, p.c.triage_reason, p.c.triage_detail, p.c.playbook,
                        d.c.id.label("decision_id"), d.c.status.label("decision_status"))
                 .outerjoin(d, d.c.prediction_id == p.c.id).where(p.c.entity_id == entity_id)
                 .order_by(p.c.observed_at.desc()).limit(limit))
        with self.reading() as conn:
            return [_row(r) for r in conn.execute(query)]

    def record_events(self, events: Sequence[Event]) -> None:
        """Append events that are not part of another write (refusals, for instance)."""
        if not events:
            return
        with self.transaction() as conn:
            self.record(conn, events, utcnow())

    def ledger_search(self, *, text: str | None = None, event: str | None = None,
                      actor: str | None = None, limit: int = 50) -> list[LedgerEntry]:
        """Newest matching ledger entries first (``text`` matches decision id or event)."""
        query = select(t.ledger).order_by(t.ledger.c.seq.desc()).limit(limit)
        if event:
            query = query.where(t.ledger.c.event.like(f"{event}%"))
        if actor:
            query = query.where(t.ledger.c.actor == actor)
        if text:
            query = query.where(or_(t.ledger.c.decision_id == text,
                                    and_(t.ledger.c.event.like(f"%{text}%"))))
        with snapshot(self.engine) as conn:
            found = [LedgerEntry.model_validate(dict(r._mapping)) for r in conn.execute(query)]
            if len(found) < limit:  # then the archived entries, newest segment first
                matches = search_filter(conn.dialect.name, text=text, event=event, actor=actor)
                found += islice((e for e in archived_entries(conn, newest_first=True)
                                 if matches(e)), limit - len(found))
        return found
