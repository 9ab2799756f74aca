"""Tables of the service layer (HTTP API, web inbox, ops chat): users and their API
tokens, webhook deliveries, chat conversations, operator holds and four-eyes edit
proposals.

They live on the same ``metadata`` as the core tables (``_tables``), so Alembic sees one
schema; migration ``0002_service`` creates them and must stay in step (a test in
``tests/api`` compares them). Reads and writes are in ``_service``.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, Text

from decisionops.agent.store._tables import Time, metadata

__all__ = [
    "api_tokens",
    "chat_conversations",
    "chat_messages",
    "edit_proposals",
    "holds",
    "users",
    "webhook_deliveries",
]

users = Table(
    "users", metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("functions", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("disabled_at", Time),
    Column("email", String(320)),  # where approver notifications go (0012_notifications)
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_name", String(100), ForeignKey("users.name"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Time, nullable=False),
    Column("expires_at", Time),
    Column("revoked_at", Time),
    Index("ix_api_tokens_user", "user_name"),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("delivery_id", String(200), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("received_at", Time, nullable=False),
    Column("status_code", Integer),
    Column("response", JSON),
)

chat_conversations = Table(
    "chat_conversations", metadata,
    Column("id", String(40), primary_key=True),
    Column("user_name", String(100), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Index("ix_chat_conversations_user", "user_name", "updated_at"),
)

chat_messages = Table(
    "chat_messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(40), ForeignKey("chat_conversations.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("meta", JSON),
    Column("at", Time, nullable=False),
    Index("ix_chat_messages_conversation", "conversation_id", "id"),
)

holds = Table(
    "holds", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_type", String(16), nullable=False),
    Column("target", String(200), nullable=False),
    Column("until", Time, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("released_at", Time),
    Column("released_by", String(200)),
    Index("ix_holds_target", "target_type", "target"),
)

edit_proposals = Table(
    "edit_proposals", metadata,
    Column("approval_id", String(64), ForeignKey("approvals.id"), primary_key=True),
    Column("plan_hash", String(64), nullable=False),
    Column("proposer", String(200), nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", Time, nullable=False),
)
