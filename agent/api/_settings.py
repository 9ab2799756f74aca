"""``ServiceSettings``: what only the HTTP service needs (listen address, body limits,
webhook secrets, session signing, the background worker).

Read from ``DECISIONOPS_*`` environment variables or keyword arguments at the
composition root (``create_app`` / ``decisionops serve``), next to ``agent.settings.Settings``
which holds everything the runtime needs. Secrets are ``SecretStr``: never printed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DECISIONOPS_", extra="ignore",
                                      validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(8400, ge=0, le=65_535)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    """Largest request body on every route but ingest (413 above it, before parsing)."""
    max_ingest_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """Largest body on the prediction ingest and webhook routes."""
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list, max_length=2)
    """HMAC secrets for signed webhooks: the current one, and during rotation the previous
    one (comma-separated in ``DECISIONOPS_WEBHOOK_SECRETS``)."""
    webhook_tolerance_seconds: int = Field(300, ge=1, le=3600)
    session_secret: SecretStr | None = None
    """Signs the web session cookie. Unset: a key made once and kept in the data folder
    (``session_secret``, owner-only), so sessions survive a restart; production sets
    its own (replicas share it)."""
    session_max_age_seconds: int = Field(8 * 3600, ge=60)
    cookie_secure: bool = False
    """Mark cookies ``Secure`` (set it when the service is behind HTTPS)."""
    worker_interval_seconds: float = Field(2.0, ge=0)
    """The in-process loop (triage, start decisions, apply answers); 0 turns it off."""
    chat_max_turns: int = Field(6, ge=1, le=20)
    """Most LLM round trips (tool calls) for one chat message."""

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
