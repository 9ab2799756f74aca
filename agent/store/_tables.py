"""Table definitions of our own store (SQLAlchemy Core). Migrations in ``migrations/``
must keep these in step; a test compares them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back time-zone aware (SQLite itself
    keeps no offset), so every backend returns the same values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Time = UTCDateTime()
_UNTRIAGED = text("triaged_at IS NULL")
_UNAPPLIED = text("applied_at IS NULL")
_UNPRUNED = text("checkpoint_pruned_at IS NULL")
UNSTARTED_ACT = text("started_at IS NULL AND triage_action = 'act'")
"""Actionable predictions without a decision yet: the condition of their partial index,
as queries must spell it for SQLite to use the index (constants, not parameters)."""
UNSTARTED_HUMAN = text("started_at IS NULL AND triage_action = 'needs_human'")
"""Predictions a person must look at, without a decision yet (ditto)."""

predictions = Table(
    "predictions", metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("score", Float, nullable=False),
    Column("value_at_stake", Float),
    Column("observed_at", Time, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("source", String(500), nullable=False),
    Column("ingested_at", Time, nullable=False),
    Column("triage_action", String(16)),
    Column("triage_reason", String(64)),
    Column("triage_detail", Text),
    Column("playbook", String(100)),
    Column("expected_value", Float),
    Column("triaged_at", Time),
    # The ledger entry of the batch the prediction was accepted in (None before batch
    # entries: then it has a ``prediction.ingested`` entry of its own).
    Column("ingest_seq", BigInteger),
    # A value at stake the prediction arrived without: supplied by a person, or the
    # kind's configured default triage used (the payload stays as received).
    Column("value_at_stake_supplied", Float),
    # When its decision was created (None: none yet). Open work leaves the partial
    # indexes below with it, so what is not started yet is asked of the open work only.
    Column("started_at", Time),
    Index("ix_predictions_untriaged", "ingested_at", sqlite_where=_UNTRIAGED,
          postgresql_where=_UNTRIAGED),
    Index("ix_predictions_unstarted", "observed_at", "id", sqlite_where=UNSTARTED_ACT,
          postgresql_where=UNSTARTED_ACT),
    Index("ix_predictions_unstarted_human", "ingested_at", sqlite_where=UNSTARTED_HUMAN,
          postgresql_where=UNSTARTED_HUMAN),
    Index("ix_predictions_entity", "kind", "entity_id"),
    Index("ix_predictions_ingest_seq", "ingest_seq"),
)

decisions = Table(
    "decisions", metadata,
    Column("id", String(64), primary_key=True),
    Column("prediction_id", String(200), ForeignKey("predictions.id"), nullable=False,
           unique=True),
    Column("kind", String(64), nullable=False),
    Column("entity_id", String(200), nullable=False),
    Column("playbook", String(100)),
    Column("status", String(32), nullable=False),
    Column("plan_version", Integer, nullable=False, default=0),
    Column("plan_hash", String(64)),
    Column("expected_value", Float),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("finished_at", Time),
    Column("error", Text),
    Column("lease_owner", String(200)),
    Column("lease_until", Time),
    Column("fence", BigInteger, nullable=False, default=0),
    Column("checkpoint_pruned_at", Time),
    Column("leg_failures", Integer, nullable=False, server_default="0"),
    Index("ix_decisions_status", "status", "updated_at"),
    Index("ix_decisions_entity", "kind", "entity_id"),
    Index("ix_decisions_entity_open", "entity_id", "status"),
    # Partial: a decision leaves it once retention pruned its checkpoints, so retention
    # asks only the decisions it has left to do.
    Index("ix_decisions_unpruned", "finished_at", sqlite_where=_UNPRUNED,
          postgresql_where=_UNPRUNED),
)

plans = Table(
    "plans", metadata,
    Column("decision_id", String(64), ForeignKey("decisions.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("planner", String(32), nullable=False),
    Column("playbook", String(100)),
    Column("body", JSON, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("problems", JSON),
    Column("meta", JSON),
    Column("created_at", Time, nullable=False),
)

plan_steps = Table(
    "plan_steps", metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("plan_version", Integer, primary_key=True),
    Column("step_id", String(64), primary_key=True),
    Column("function", String(64), nullable=False),
    Column("tool", String(80), nullable=False),
    # NULL: the plan version's own (``plans.body``); the store reads them back.
    Column("arguments", JSON(none_as_null=True)),
    Column("arguments_hash", String(64), nullable=False),
    Column("depends_on", JSON, nullable=False),
    Column("risk", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("detail", Text),
)

approvals = Table(
    "approvals", metadata,
    Column("id", String(64), primary_key=True),
    Column("decision_id", String(64), ForeignKey("decisions.id"), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("plan_hash", String(64), nullable=False),
    Column("function", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("request", JSON),
    Column("requested_at", Time, nullable=False),
    Column("deadline", Time),
    Column("answered_at", Time),
    Column("approver", String(200)),
    Column("answer", JSON),
    Column("approved_arguments", JSON),
    Column("applied_at", Time),
    UniqueConstraint("decision_id", "plan_version", "function"),
    Index("ix_approvals_pending", "status", "function", "deadline"),
    # Partial: applied answers (the great majority, growing with every decision) leave
    # it, so asking which decisions have answers to apply costs the answers waiting.
    Index("ix_approvals_unapplied", "decision_id", "answered_at", sqlite_where=_UNAPPLIED,
          postgresql_where=_UNAPPLIED),
)

executions = Table(
    "executions", metadata,
    Column("idempotency_key", String(120), primary_key=True),
    Column("decision_id", String(64), ForeignKey("decisions.id"), nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("step_id", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("tool", String(80), nullable=False),
    # NULL: the plan step's own arguments (approved as proposed); an edited step's and a
    # compensation's are stored.
    Column("arguments", JSON(none_as_null=True)),
    Column("arguments_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("receipt", JSON),
    Column("error", Text),
    Column("started_at", Time),
    Column("finished_at", Time),
    Index("ix_executions_decision", "decision_id", "step_id"),
)

outcomes = Table(
    "outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(64), ForeignKey("decisions.id"), nullable=False),
    Column("label", String(100), nullable=False),
    Column("value_realized", Float, nullable=False),
    Column("observed_at", Time, nullable=False),
    Column("note", Text),
    Column("recorded_at", Time, nullable=False),
)

ledger = Table(
    "ledger", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Time, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("event", String(64), nullable=False),
    Column("decision_id", String(64)),
    Column("plan_hash", String(64)),
    Column("body", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_ledger_decision", "decision_id", "seq"),
)

ledger_head = Table(
    "ledger_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

ledger_segments = Table(
    # Ledger entries archived after retention: a contiguous run of the chain, oldest
    # first, compressed (see ``ledger.encode_segment``). ``verify`` walks these before
    # the ``ledger`` rows.
    "ledger_segments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("entries_count", Integer, nullable=False),
    Column("first_at", Time, nullable=False),
    Column("last_at", Time, nullable=False),
    Column("prev_hash", String(64), nullable=False),  # hash of entry first_seq - 1
    Column("last_hash", String(64), nullable=False),
    Column("codec", String(16), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("raw_bytes", Integer, nullable=False),
    Column("created_at", Time, nullable=False),
    Index("ux_ledger_segments_first_seq", "first_seq", unique=True),
)

ledger_segment_decisions = Table(
    # Which segments hold entries of a decision, so its history decompresses only those.
    "ledger_segment_decisions", metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("segment_id", Integer, ForeignKey("ledger_segments.id", ondelete="CASCADE"),
           primary_key=True),
)

llm_calls = Table(
    "llm_calls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(64)),
    Column("plan_version", Integer),
    Column("purpose", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt_version", String(64)),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("latency_ms", Float),
    Column("outcome", String(32), nullable=False),
    Column("at", Time, nullable=False),
    Index("ix_llm_calls_at", "at"),
    Index("ix_llm_calls_decision", "decision_id"),
)

llm_replies = Table(
    # The model's successful replies while a plan version is drafted, under the hash of
    # the request each answered: a draft cut short (a killed or stopped worker) replays
    # them when run again instead of asking the model again. Dropped when the version is
    # stored (``PlanRepo.save``).
    "llm_replies", metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("plan_version", Integer, primary_key=True),
    Column("request_hash", String(64), primary_key=True),
    Column("occurrence", Integer, primary_key=True),  # 1: the first time a draft asked it
    Column("reply", Text, nullable=False),
    Column("tokens_in", Integer, nullable=False),  # what the call that got it cost
    Column("tokens_out", Integer, nullable=False),
    Column("cost", Float, nullable=False),
    Column("at", Time, nullable=False),
)

llm_spend = Table(
    # Each UTC day's cost of LLM calls, kept with every call (``LLMRepo.record_llm_call``):
    # the daily spend cap reads one row, not every call of the day.
    "llm_spend", metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("cost", Float, nullable=False),
    Column("calls", Integer, nullable=False),
)

plan_cache = Table(
    "plan_cache", metadata,
    Column("signature", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("playbook", String(100)),
    Column("planner", String(32), nullable=False),
    Column("body", JSON, nullable=False),
    Column("source_decision_id", String(64)),
    Column("created_at", Time, nullable=False),
    Column("last_hit_at", Time),
    Column("hits", Integer, nullable=False, default=0),
)

usage = Table(
    # What approved calls used of the function policies' totals (``policy.Total``): one
    # row per call and summed argument, written with the call's write-ahead record, so
    # the executor checks a total and claims its share in one transaction. A call that
    # made no effect (failed before acting) or was compensated releases its share.
    "usage", metadata,
    Column("idempotency_key", String(120), primary_key=True),
    Column("measure", String(64), primary_key=True),
    Column("decision_id", String(64), nullable=False),
    Column("tool", String(80), nullable=False),
    Column("target", String(400), nullable=False),
    Column("amount", Float, nullable=False),
    Column("at", Time, nullable=False),
    Column("released_at", Time),
    Index("ix_usage_total", "tool", "measure", "target", "at"),
    Index("ix_usage_decision", "decision_id"),
)

hand_plans = Table(
    # A plan a person wrote for a prediction in the needs-a-human queue (one per
    # prediction): the decision it starts drafts its first version from ``body``.
    "hand_plans", metadata,
    Column("prediction_id", String(200), ForeignKey("predictions.id"), primary_key=True),
    Column("author", String(200), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
)
