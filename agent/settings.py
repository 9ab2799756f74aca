"""Settings: one object, read once at the composition root and passed down.

Sources, strongest first: keyword arguments, ``DECISIONOPS_*`` environment variables,
``decisionops.toml`` in the working directory (or the file named by
``DECISIONOPS_CONFIG``), then defaults that need nothing: everything embedded under
``.decisionops/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DECISIONOPS_", extra="forbid",
                                      validate_default=True)

    environment: Literal["development", "production"] = "development"
    home: Path = Path(".decisionops")
    """Data folder of the embedded default (SQLite files)."""
    database_url: str | None = None
    """SQLAlchemy URL of our tables. Default: SQLite in ``home``."""
    checkpoint_url: str | None = None
    """LangGraph checkpointer: a SQLite path/URL or a PostgreSQL URL. Default: SQLite in ``home``."""
    enterprise_url: str | None = None
    """The reference enterprise's database. Default: SQLite in ``home``."""
    playbooks_dir: Path | None = None
    """Extra playbooks; a playbook with a bundled playbook's name replaces it."""
    functions_file: Path | None = None
    """Function policies replacing the bundled ``functions.yaml``."""
    planner: Literal["playbook", "llm", "hybrid"] = "playbook"
    durability: Literal["exit", "async", "sync"] = "exit"
    """LangGraph checkpoint durability; see README, architecture."""
    max_replans: int = Field(2, ge=0, le=10)
    tool_attempts: int = Field(3, ge=1, le=10)
    tool_backoff_seconds: float = Field(0.2, ge=0, le=60)
    executor_threads: int = Field(4, ge=1, le=64)
    lease_seconds: int = Field(120, ge=5, le=86_400)
    holdout_share: float = Field(0.0, ge=0.0, lt=1.0)
    """Share of actionable predictions deliberately not acted on (control group)."""
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("DECISIONOPS_CONFIG", "decisionops.toml"))
        return (init_settings, env_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    @model_validator(mode="after")
    def _production_needs_explicit_storage(self) -> Settings:
        if self.environment == "production" and self.database_url is None:
            raise ValueError("database_url: production refuses the embedded SQLite default; "
                             "set DECISIONOPS_DATABASE_URL")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'decisionops.sqlite'}"

    @property
    def resolved_checkpoint_url(self) -> str:
        if self.checkpoint_url:
            return self.checkpoint_url
        if self.database_url and self.database_url.startswith("postgresql"):
            return self.database_url  # one PostgreSQL database holds both
        return str(self.home / "checkpoints.sqlite")

    @property
    def resolved_enterprise_url(self) -> str:
        return self.enterprise_url or f"sqlite:///{self.home / 'enterprise.sqlite'}"
