"""Settings: one object, read once at the composition root and passed down.

Sources, strongest first: keyword arguments, ``DECISIONOPS_*`` environment variables,
``decisionops.toml`` in the working directory (or the file named by
``DECISIONOPS_CONFIG``), then defaults that need nothing: everything embedded under
``.decisionops/``.
"""

from __future__ import annotations

import base64
import math
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["ModelPrice", "OpenApiToolsConfig", "Settings", "SourceConfig", "ToolServerConfig"]

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_NAME = re.compile(r"auth|token|key|secret|password|cookie", re.IGNORECASE)


def expand_env(value: str, where: str) -> str:
    """``Bearer ${CRM_TOKEN}`` with the variable's value; a variable that is not set is a
    configuration error naming ``where`` (never the value)."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"{where}: environment variable {name} is not set")
        return os.environ[name]
    return _ENV_REF.sub(one, value)


class PreviewConfig(BaseModel):
    """The preview of one outside tool (``previews`` of ``[[openapi_tools]]`` and
    ``[[tool_servers]]``): ``tool`` is another of the same config's reads (an operationId
    there, the server's own tool name here), called with the call's arguments (all, or
    ``arguments``: preview argument → the call's argument); ``watch`` names fields of its
    result that must still hold when the step runs, within ``tolerance`` (relative)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: str = Field(min_length=1, max_length=200)
    arguments: dict[str, str] | None = None
    watch: list[str] = Field(default_factory=list)
    tolerance: float = Field(0.0, ge=0.0, le=10.0)


class ToolServerConfig(BaseModel):
    """An MCP server whose tools join the registry (``[[tool_servers]]`` in
    decisionops.toml), named ``<name>.<tool>``.

    Secrets by reference only: a value in ``env`` or ``headers`` may name environment
    variables as ``${VAR}``, read when the server is connected; a header or variable
    whose name looks secret (auth, token, key, secret, password, cookie) must be such a
    reference, never a literal.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    transport: Literal["stdio", "http"]
    command: list[str] | None = None
    """stdio: the program and its arguments."""
    cwd: Path | None = None
    """stdio: the folder the server starts in, so relative paths in ``command`` are read
    from there. In decisionops.toml it defaults to the file's own folder (a relative
    ``cwd`` is read from there too); None (settings from the environment alone): the
    directory decisionops runs in."""
    url: str | None = None
    """http: the streamable HTTP endpoint (``https://…/mcp``)."""
    env: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    function: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The business function that owns the server's tools (the allow-lists in
    functions.yaml still decide who may use them)."""
    risk: Literal["low", "medium", "high"] = "medium"
    """Risk of its tools that change something (read-only tools are low)."""
    risks: dict[str, Literal["low", "medium", "high"]] = Field(default_factory=dict)
    """Tool (as the server names it) → its own risk, over ``risk``: one low-risk write
    among riskier ones (a playbook step's risk is never below its tool's)."""
    read_only: list[str] = Field(default_factory=list)
    """Tools (as the server names them) that only read: low risk, no side effects. The
    server's own ``readOnlyHint`` is not trusted for this: a server that marked a write
    as a read would get it approved as low risk and retried freely."""
    targets: dict[str, list[str]] = Field(default_factory=dict)
    """Tool (as the server names it) → the arguments that name what it acts on; an
    approval binds them."""
    previews: dict[str, PreviewConfig] = Field(default_factory=dict)
    """Tool (as the server names it) → its preview: another of the server's tools, listed
    in ``read_only``, e.g. ``{open_case = {tool = "case_count", watch = ["open"]}}``."""
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    """Connecting, listing and each call; past it the step fails as retryable."""

    @model_validator(mode="after")
    def _previews_read(self) -> ToolServerConfig:
        for tool, preview in self.previews.items():
            if preview.tool not in self.read_only:
                raise ValueError(f"previews.{tool}: the preview tool {preview.tool!r} is not in "
                                 "read_only (a preview must only read)")
        return self

    @model_validator(mode="after")
    def _complete(self) -> ToolServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("command: a stdio server needs command (a list: program, arguments)")
        if self.transport == "http" and not (self.url and re.match(r"^https?://", self.url)):
            raise ValueError("url: an http server needs url (http:// or https://)")
        if self.transport == "http" and self.cwd is not None:
            raise ValueError("cwd: only a stdio server has a working directory (an http "
                             "server is not started by decisionops)")
        for table, values in (("env", self.env), ("headers", self.headers)):
            for key, value in values.items():
                if _SECRET_NAME.search(key) and not _ENV_REF.search(value):
                    raise ValueError(f"{table}.{key}: give secrets as ${{ENV_VAR}} references, "
                                     "not literal values")
        return self


class ModelPrice(BaseModel):
    """An LLM's price in money per 1M tokens (the currency of ``llm_daily_spend_cap``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(ge=0)
    output: float = Field(ge=0)


class SourceConfig(BaseModel):
    """A place the loop polls for predictions (``[[sources]]`` in decisionops.toml).

    ``directory``: CSV/JSONL/Parquet files dropped in ``path`` are ingested once finished
    (the same size and time at two polls; ``*.part`` and dotfiles never), then moved to
    ``path/processed`` (or ``path/rejected`` when no row was usable) under a name not
    yet taken, with ``NAME.errors.txt``/``.json`` beside it when rows were rejected
    (``agent.dropfolder``). ``sql``: rows of
    ``query`` (a table, view or SELECT) newer than the stored cursor are ingested.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=100)
    type: Literal["directory", "sql"]
    path: Path | None = None
    format: Literal["auto", "csv", "jsonl"] = "auto"
    url: str | None = None
    query: str | None = None
    cursor_column: str | None = None
    schedule: str | None = None
    """Cron expression (UTC); None: every tick of the loop."""
    mapping: dict = Field(default_factory=dict)
    """A FieldMapping (column names, defaults) as a table."""

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if self.type == "directory" and self.path is None:
            raise ValueError("path: a directory source needs a path")
        if self.type == "sql" and not (self.url and self.query and self.cursor_column):
            raise ValueError("a sql source needs url, query and cursor_column")
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"schedule: {self.schedule!r} is not a cron expression")
        return self


class OpenApiToolsConfig(BaseModel):
    """Operations of an OpenAPI 3 service as tools (``[[openapi_tools]]`` in
    decisionops.toml), named ``<name>.<operation_id in snake_case>``.

    Only the operations in ``operations`` become tools. Every call with a method other
    than GET/HEAD/OPTIONS carries the executor's key as an ``Idempotency-Key`` header;
    those calls change something (risk ``risk``), the others only read (risk low).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    spec: str
    """The OpenAPI document (JSON or YAML): a file path or an http(s) URL."""
    base_url: str = Field(pattern=r"^https?://")
    operations: list[str] = Field(min_length=1)
    """Allow-list of operationIds."""
    function: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The business function that owns these tools."""
    risk: Literal["low", "medium", "high"] = "medium"
    auth_header: str | None = None
    """Header that carries the credential (``Authorization``, ``X-API-Key``)."""
    auth_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Environment variable holding the credential (never the value itself)."""
    auth_scheme: str = ""
    """Prefix of the header's value, e.g. ``Bearer``."""
    targets: dict[str, list[str]] = Field(default_factory=dict)
    """operationId → the arguments that name what it acts on; an approval binds them."""
    previews: dict[str, PreviewConfig] = Field(default_factory=dict)
    """operationId → its preview: another listed operation that only reads (a GET of the
    target, a dry-run endpoint), e.g. ``{createCredit = {tool = "getAccount", watch =
    ["balance"]}}``."""
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _names_are_listed(self) -> OpenApiToolsConfig:
        # A misspelt operation in targets would leave its target unlocked, unsaid.
        for operation in self.targets:
            if operation not in self.operations:
                raise ValueError(f"targets.{operation}: the operation {operation!r} is not in "
                                 f"operations ({', '.join(self.operations)})")
        for operation, preview in self.previews.items():
            for name, what in ((operation, "previewed"), (preview.tool, "preview")):
                if name not in self.operations:
                    raise ValueError(f"previews.{operation}: the {what} operation {name!r} is "
                                     "not in operations")
        return self

    @model_validator(mode="after")
    def _auth(self) -> OpenApiToolsConfig:
        if (self.auth_header is None) != (self.auth_env is None):
            raise ValueError("auth_env: auth_header and auth_env go together (the header "
                             "and the environment variable that holds its value)")
        return self


class _TomlFile(TomlConfigSettingsSource):
    """``decisionops.toml``, its relative paths read from the file's own folder (a file
    named by ``DECISIONOPS_CONFIG`` elsewhere means the files beside it, not the working
    directory's): ``home``, ``playbooks_dir``, ``functions_file``, a directory source's
    ``path``, an OpenAPI tool's local ``spec`` and a stdio MCP server's ``cwd``, which is
    the file's folder when not given (its command's relative paths read from there)."""

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        data = super()._read_files(files, deep_merge=deep_merge)
        if not isinstance(files, str | Path) or not data:
            return data
        base = Path(files).resolve().parent

        def anchored(value: Any) -> Any:
            if isinstance(value, str) and value and "://" not in value \
                    and not Path(value).expanduser().is_absolute():
                return str(base / value)
            return value

        for key in ("home", "playbooks_dir", "functions_file"):
            if key in data:
                data[key] = anchored(data[key])
        for table, key in (("sources", "path"), ("openapi_tools", "spec")):
            for item in data.get(table) or ():
                if isinstance(item, dict) and key in item:
                    item[key] = anchored(item[key])
        for item in data.get("tool_servers") or ():
            if isinstance(item, dict) and (item.get("transport") == "stdio" or "cwd" in item):
                item["cwd"] = anchored(item.get("cwd") or ".")
        return data


def config_path() -> Path:
    """The settings file: ``DECISIONOPS_CONFIG``, else ``decisionops.toml`` here."""
    return Path(os.environ.get("DECISIONOPS_CONFIG", "decisionops.toml"))


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
    """The reference enterprise's database: SQLite only (a ``sqlite:///`` URL or a path;
    processes on one host share the file). Default: SQLite in ``home``."""
    playbooks_dir: Path | None = None
    """Extra playbooks; a playbook with a bundled playbook's name replaces it."""
    functions_file: Path | None = None
    """Function policies replacing the bundled ``functions.yaml``."""
    planner: Literal["playbook", "llm", "hybrid"] = "playbook"
    planner_concurrency: int = Field(32, ge=1, le=512)
    """Decisions a worker plans at once with a planner that waits on a model (``llm``,
    ``hybrid``); it claims only as many as it has free. The playbook planner computes
    in-process and plans one at a time, between answers; so does a model planner at 1
    (no pool: the loop's own thread, a batch a pass)."""
    durability: Literal["exit", "async", "sync"] = "exit"
    """LangGraph checkpoint durability; see README, architecture."""
    max_replans: int = Field(2, ge=0, le=10)
    tool_attempts: int = Field(3, ge=1, le=10)
    tool_backoff_seconds: float = Field(0.2, ge=0, le=60)
    executor_threads: int = Field(4, ge=1, le=64)
    lease_seconds: int = Field(120, ge=1, le=86_400)
    max_leg_failures: int = Field(5, ge=1, le=1000)
    """Legs of one decision that may fail in a row (an error no retry mends: a bug, a
    result the store cannot take) before the loop holds the decision for an operator
    (``holds list``; ``holds release DECISION`` lets it try again) instead of trying again
    after every lease."""
    holdout_share: float = Field(0.05, ge=0.0, lt=1.0)
    """Share of actionable predictions deliberately not acted on (control group), so
    uplift can be measured against them; 0 turns it off (``run``, ``serve`` and
    ``report`` then warn that uplift cannot be measured)."""
    kind_aliases: dict[str, str] = Field(default_factory=dict)
    """Kind as a source sends it → kind of our playbooks (JSON object in
    ``DECISIONOPS_KIND_ALIASES``, e.g. ``{"equipment_failure": "failure"}``), applied at
    intake on every path; the prediction keeps the original in ``kind_as_received``."""
    value_at_stake_defaults: dict[str, float] = Field(default_factory=dict)
    """Kind → value at stake triage assumes when a prediction has none and its playbook
    needs an expected value (JSON object in ``DECISIONOPS_VALUE_AT_STAKE_DEFAULTS``).
    A kind without one sends such predictions to a person (``needs_human``)."""
    cli_answers: bool | None = None
    """Whether ``decisionops approvals approve|edit|reject|revise`` may answer (as a
    registered approver, under the same rules as every channel). None: yes in
    development, no in production (answers then come through the inbox or the API,
    where a credential proves who answers)."""
    sources: list[SourceConfig] = Field(default_factory=list)
    """Polled by the continuous loop; see SourceConfig."""
    tool_servers: list[ToolServerConfig] = Field(default_factory=list)
    """MCP servers whose tools join the registry; see ToolServerConfig."""
    openapi_tools: list[OpenApiToolsConfig] = Field(default_factory=list)
    """OpenAPI operations that join the registry; see OpenApiToolsConfig."""
    tool_hosts: list[str] = Field(default_factory=list)
    """Hosts HTTP tools may reach besides those of configured URLs; only hosts named here
    may resolve to private, loopback or link-local addresses (SSRF guard)."""
    retention_days: float = Field(30.0, ge=0)
    """Checkpoints of decisions finished longer ago are deleted (the store keeps the
    record, the plan, the executions and the ledger), and ledger entries older than this
    are archived (``ledger_archive``)."""
    public_url: str | None = None
    """Base URL where people reach ``serve`` (e.g. ``https://decisionops.example.com``):
    links in approver notifications point at ``<public_url>/inbox/requests/<id>``."""
    slack_webhook_url: SecretStr | None = None
    """Slack-compatible incoming webhook approvers are notified on (a secret)."""
    smtp_url: SecretStr | None = None
    """``smtp://user:pass@host:port`` (or ``smtps://``) approvers are e-mailed through."""
    smtp_starttls: bool = False
    """Upgrade an ``smtp://`` connection with STARTTLS before logging in."""
    smtp_from: str | None = None
    """From address of notification e-mails (required with ``smtp_url``)."""
    approver_emails: dict[str, str] = Field(default_factory=dict)
    """Approver (user name) → e-mail address (JSON object in
    ``DECISIONOPS_APPROVER_EMAILS``); an approver whose name is an address needs none."""
    notify_max_attempts: int = Field(6, ge=1, le=50)
    """Attempts per notification before it is marked ``failed``."""
    notify_backoff_seconds: float = Field(5.0, ge=0, le=3600)
    """First retry delay of a notification; doubled each attempt (at most an hour)."""
    ledger_anchor_url: str | None = None
    """Where the loop posts an anchor of the ledger (its head's hash and length, JSON) every
    ``ledger_anchor_every_minutes``: a receiver you control, outside this database, so a
    truncated and re-chained tail is caught (``ledger verify --anchor``). None: off."""
    ledger_anchor_every_minutes: float = Field(60.0, ge=1, le=7 * 24 * 60)
    ledger_anchor_token: SecretStr | None = None
    """Sent as ``Authorization: Bearer`` with each anchor."""
    ledger_anchor_signing_secret: SecretStr | None = None
    """``whsec_<base64>``: each anchor is also signed the Standard Webhooks way
    (``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers). None: unsigned
    (the Bearer token alone, as before)."""
    ledger_archive: bool = True
    """Move ledger entries past ``retention_days`` into compressed segments in the store
    (still read and verified as one chain); off: they stay in the ``ledger`` table."""
    ledger_segment_entries: int = Field(10_000, ge=100, le=1_000_000)
    """Entries per archived segment. The loop archives full segments, and a smaller one
    once its oldest entry has been due for a day (``decisionops ledger archive`` archives
    everything due at once)."""
    sla_reminder_at: float = Field(0.5, gt=0, lt=1)
    """Share of an approval's SLA after which its approvers are reminded."""
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    """Where spans go: nowhere, the console (development) or an OTLP/HTTP collector."""
    otel_endpoint: str | None = None
    """OTLP/HTTP traces endpoint; default: the exporter's own (OTEL_EXPORTER_OTLP_* vars)."""
    otel_capture_content: bool = False
    """Record prompt and completion text in LLM spans (``gen_ai.input.messages`` /
    ``gen_ai.output.messages``). Off by default: prompts quote prediction data."""
    metrics_port: int | None = Field(None, ge=1, le=65535)
    """``run`` serves Prometheus metrics on this port (the API serves /metrics itself)."""
    sla_escalate_at: float = Field(0.8, gt=0, lt=1)
    """Share of the SLA after which the function's escalation contact is told."""
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_mode: Literal["auto", "tools", "json"] = "auto"
    """How the model returns plans: ``tools`` (function calling), ``json`` (JSON-schema
    output), or ``auto``: tools, switching to JSON (and back) on a 400 "not supported"."""
    llm_timeout_seconds: float = Field(60.0, gt=0, le=600)
    llm_stop_grace_seconds: float = Field(10.0, ge=0, le=600)
    """When the worker stops (SIGTERM), how long a model call in flight may still take to
    answer (its answer is paid for and kept) before the draft stops waiting for it and
    gives its decision back."""
    llm_max_retries: int = Field(2, ge=0, le=10)
    """Retries of one call (timeouts, 429, 5xx); also the unusable replies (bad JSON,
    unknown tool, truncated) tolerated per draft."""
    llm_backoff_seconds: float = Field(1.0, ge=0, le=60)
    llm_max_retry_after_seconds: float = Field(30.0, ge=0, le=600)
    llm_requests_per_minute: int | None = Field(None, ge=1)
    """Client-side limit on requests per minute to the model (all of a worker's planning
    threads); None: none. A 429's Retry-After pauses every thread in any case."""
    llm_tokens_per_minute: int | None = Field(None, ge=1)
    """Client-side limit on tokens per minute (prompt estimate per request); None: none."""
    llm_circuit_failures: int = Field(5, ge=1, le=1000)
    """Calls in a row that fail to reach the model before the circuit opens: planners
    then fall back at once, without calling, for ``llm_circuit_cooldown_seconds``."""
    llm_circuit_cooldown_seconds: float = Field(30.0, ge=0, le=3600)
    """A 429's Retry-After is honoured up to this; a longer one ends the call (fallback)."""
    llm_max_repairs: int = Field(2, ge=0, le=5)
    """Guard-refused drafts sent back to the model for correction before falling back."""
    llm_max_lookup_rounds: int = Field(3, ge=0, le=10)
    llm_max_output_tokens: int = Field(2000, ge=64, le=32_000)
    llm_token_cap_per_decision: int = Field(30_000, ge=1)
    llm_daily_spend_cap: float | None = Field(20.0, ge=0)
    """Spend per UTC day (all workers) after which LLM planners fall back; None: no cap."""
    llm_prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: {"*": ModelPrice(input=2.5, output=10.0)})
    """Model name (or ``*`` for any other) → price per 1M input/output tokens."""
    llm_fallback: Literal["playbook", "human"] = "playbook"
    """When the LLM gives no valid plan: the playbook's plan, or none (needs a human plan)."""
    plan_cache_ttl_hours: float = Field(24.0, ge=0)
    """Reuse an accepted LLM plan's structure for matching predictions this long; 0: off."""
    plan_cache_top_features: int = Field(0, ge=0, le=10)
    """Explanation features (by weight) that are part of the plan-cache signature. With 0
    (the default) drivers are checked when an entry is reused instead: a cached plan whose
    own wording names a driver the new prediction lacks is not reused."""
    hybrid_max_extra_steps: int = Field(1, ge=0, le=10)
    """Steps the hybrid planner may add to the playbook's plan."""
    hybrid_max_growth: float = Field(2.0, ge=1.0, le=100.0)
    """A number in a hybrid plan may grow to at most this times the playbook's value."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings,
                _TomlFile(settings_cls, toml_file=config_path()))

    @field_validator("kind_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, kind in value.items():
            for name in (alias, kind):
                if not _KIND.match(name):
                    raise ValueError(f"{name!r} is not a kind name (lowercase letters, digits "
                                     "and underscores, starting with a letter, at most 64)")
            if alias == kind:
                raise ValueError(f"{alias!r} is mapped onto itself")
            if kind in value:
                raise ValueError(f"{alias!r} → {kind!r}, which is itself an alias; map "
                                 f"{alias!r} onto {value[kind]!r} directly")
        return value

    @field_validator("ledger_anchor_signing_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value().removeprefix("whsec_")
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except ValueError:
            key = b""
        if len(key) < 24:
            raise ValueError("must be whsec_ followed by the base64 of at least 24 random "
                             "bytes (a Standard Webhooks secret)")
        return value

    @field_validator("value_at_stake_defaults")
    @classmethod
    def _value_defaults(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, amount in value.items():
            if not _KIND.match(kind):
                raise ValueError(f"{kind!r} is not a kind name (lowercase letters, digits "
                                 "and underscores, starting with a letter, at most 64)")
            if not (math.isfinite(amount) and amount >= 0):
                raise ValueError(f"{kind!r}: the value at stake must be a finite number >= 0")
        return value

    @model_validator(mode="after")
    def _defaults_by_our_kinds(self) -> Settings:
        """A default given under a source's kind name (an alias) is the default of the kind
        it maps to: triage looks defaults up after aliases apply."""
        moved: dict[str, float] = {}
        given = self.value_at_stake_defaults
        for kind in sorted(given, key=lambda k: k in self.kind_aliases):  # ours first
            ours, amount = self.kind_aliases.get(kind, kind), given[kind]
            if ours in moved and moved[ours] != amount:
                raise ValueError(f"value_at_stake_defaults: {kind!r} is an alias of {ours!r}, "
                                 f"which has another default ({moved[ours]} vs {amount})")
            moved[ours] = amount
        object.__setattr__(self, "value_at_stake_defaults", moved)
        return self

    @model_validator(mode="after")
    def _production_needs_explicit_storage(self) -> Settings:
        if self.environment == "production" and self.database_url is None:
            raise ValueError("database_url: production refuses the embedded SQLite default; "
                             "set DECISIONOPS_DATABASE_URL")
        return self

    @model_validator(mode="after")
    def _notification_channels(self) -> Settings:
        from urllib.parse import urlsplit

        slack = self.slack_webhook_url
        if slack is not None and urlsplit(slack.get_secret_value()).scheme not in {
                "http", "https"}:
            raise ValueError("slack_webhook_url: must be an http(s) URL; "
                                 "set DECISIONOPS_SLACK_WEBHOOK_URL")
        if self.smtp_url is not None:
            parts = urlsplit(self.smtp_url.get_secret_value())
            if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
                raise ValueError("smtp_url: must be smtp://[user:pass@]host[:port] or "
                                 "smtps://…; set DECISIONOPS_SMTP_URL")
            if not self.smtp_from:
                raise ValueError("smtp_from: required with smtp_url; "
                                 "set DECISIONOPS_SMTP_FROM")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in {
                "http", "https"}:
            raise ValueError("public_url: must be an http(s) URL; set DECISIONOPS_PUBLIC_URL")
        return self

    @property
    def uplift_warning(self) -> str | None:
        """What ``run``, ``serve`` and ``report`` say when no control group is held back."""
        if self.holdout_share > 0:
            return None
        return ("holdout_share is 0: no control group is held back, so uplift cannot be "
                "measured; set DECISIONOPS_HOLDOUT_SHARE (for example 0.05)")

    @property
    def resolved_cli_answers(self) -> bool:
        if self.cli_answers is None:
            return self.environment == "development"
        return self.cli_answers

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
