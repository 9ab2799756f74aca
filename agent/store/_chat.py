"""Ops chat conversations and their messages (``Store.chat``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from decisionops.agent.hashing import short_id
from decisionops.agent.models import utcnow
from decisionops.agent.store import _service_tables as s
from decisionops.agent.store._db import Repo


def _row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


__all__ = ["ChatRepo"]


class ChatRepo(Repo):
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

    def add_messages(self, conversation_id: str,
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

    def messages(self, conversation_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` messages, oldest first."""
        with self.reading() as conn:
            rows = [_row(r) for r in conn.execute(
                select(s.chat_messages).where(s.chat_messages.c.conversation_id == conversation_id)
                .order_by(s.chat_messages.c.id.desc()).limit(limit))]
        return rows[::-1]

