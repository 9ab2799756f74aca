"""``FieldMapping``: how the columns or keys of a foreign format map onto ``Prediction``.

A mapping is plain data, loadable from a dict, a YAML file or a TOML table. Applying it
to a row lives in ``_rows``; this module only defines and loads it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from decisionops.agent._yaml import loads
from decisionops.agent.errors import ConfigError, pydantic_message

__all__ = ["REQUIRED_FIELDS", "TARGET_FIELDS", "FieldMapping", "TargetField"]

TargetField = Literal[
    "id", "model", "model_version", "kind", "entity_type", "entity_id", "score", "value",
    "value_at_stake", "currency", "explanation", "features", "observed_at",
]
TARGET_FIELDS: tuple[str, ...] = get_args(TargetField)
REQUIRED_FIELDS = ("model", "kind", "entity_type", "entity_id", "score", "observed_at")
"""Fields every row needs, from a column or from ``defaults`` (``id`` can be derived)."""

Column = str | None


class FieldMapping(BaseModel):
    """Prediction field → source column (CSV) or key (JSON). Each field defaults to a
    column of its own name; ``None`` means "never read it from the source".

    A non-blank source value wins over ``defaults``; to force a constant, set the
    column to ``None`` and give the default. Without an ``id`` value the id is derived
    from (model, model_version, kind, entity_id, observed_at), so re-reading the same
    data yields the same ids.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    id: Column = "id"
    model: Column = "model"
    model_version: Column = "model_version"
    kind: Column = "kind"
    entity_type: Column = "entity_type"
    entity_id: Column = "entity_id"
    score: Column = "score"
    value: Column = "value"
    value_at_stake: Column = "value_at_stake"
    currency: Column = "currency"
    explanation: Column = "explanation"
    """A column holding a JSON object (feature → attribution), or a JSON object itself."""
    features: Column = "features"
    """A column holding a JSON object of features, or a JSON object itself."""
    observed_at: Column = "observed_at"
    """ISO-8601 with ``Z`` or an offset, or epoch seconds."""

    defaults: dict[TargetField, Any] = Field(default_factory=dict)
    """Values for fields the source lacks or leaves blank (``kind: churn``)."""
    feature_columns: tuple[str, ...] = ()
    """Columns collected into ``features``: exact names (``region``) or prefixes ending in
    ``*`` (``feat_*``; the prefix is removed from the feature name)."""
    explanation_prefix: str | None = None
    """Columns starting with this (``shap_``) are collected into ``explanation``, named
    without it, largest absolute attribution first (at most 50 are kept)."""
    timezone: str | None = None
    """IANA zone for timestamps without an offset (``Europe/Paris``); without it they
    are an error. A wall-clock time the zone skips or shows twice (its daylight-saving
    changes) is an error too: it names no one instant."""

    @field_validator(*TARGET_FIELDS)
    @classmethod
    def _column_name(cls, value: Column) -> Column:
        if value is not None and not value.strip():
            raise ValueError("must be a column name or null")
        return value

    @field_validator("feature_columns")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not pattern.strip() or pattern == "*" or "*" in pattern[:-1]:
                raise ValueError(f"{pattern!r}: use a column name or a prefix ending in '*'")
        return value

    @field_validator("explanation_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    # ------------------------------------------------------------------ use

    def column(self, target: str) -> str | None:
        """The source column of ``target`` (``None``: not read from the source)."""
        return getattr(self, target)

    @property
    def explicit_columns(self) -> set[str]:
        """Target fields whose column was set on purpose (not left at its default name)."""
        return {t for t in TARGET_FIELDS if t in self.model_fields_set}

    @property
    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None

    def with_defaults(self, **values: Any) -> FieldMapping:
        """A copy with more ``defaults`` (what the CLI's ``--kind/--model`` set);
        ``None`` values are ignored, so unset flags can be passed straight through."""
        extra = {k: v for k, v in values.items() if v is not None}
        data = self.model_dump(exclude_unset=True)
        data["defaults"] = {**self.defaults, **extra}
        return type(self).model_validate(data)

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_file(cls, path: str | Path, *, table: str | None = None) -> FieldMapping:
        """Load a mapping from YAML (``.yaml``/``.yml``), TOML (``.toml``) or JSON.

        ``table`` is a dotted path inside the document (``sources.churn.mapping``).
        Errors are ``ConfigError`` naming the file and the field.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the mapping: {exc}") from exc
        try:
            if path.suffix == ".toml":
                data: Any = tomllib.loads(text)
            elif path.suffix == ".json":
                data = json.loads(text)
            else:
                data = loads(text)
        except (tomllib.TOMLDecodeError, ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not a valid {path.suffix.lstrip('.') or 'YAML'} "
                              f"file: {exc}") from exc
        for key in table.split(".") if table else ():
            if not isinstance(data, dict) or key not in data:
                raise ConfigError(f"{path}: no table {table!r}")
            data = data[key]
        return cls.from_dict(data or {}, location=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, location: str = "mapping") -> FieldMapping:
        """Validate a dict (a parsed YAML document or TOML table); ``ConfigError`` on failure."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {pydantic_message(e)}"
                        for e in exc.errors()]
            raise ConfigError(f"{location}: " + "; ".join(problems),
                              location=location, problems=problems) from exc
