"""Housekeeping passes of the continuous loop: SLA reminders, escalations and expiry;
checkpoint retention and ledger archival; polling sources on their schedules.

Each pass is safe to run on every worker at once: alerts are claimed once per approval
(insert-if-absent), expiry is a compare-and-set on the pending approval, retention and
sources run inside a cluster-wide exclusive section.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from agent.errors import (
    ConflictError,
    DecisionOpsError,
    InvalidInputError,
    LedgerCorrupt,
    ToolCallError,
)
from agent.hashing import short_id
from agent.models import ApprovalStatus, Reject, utcnow
from agent.settings import Settings, SourceConfig
from agent.sources import FieldMapping, read_file, read_records

__all__ = ["archive_ledger", "default_housekeeping", "expire_and_alert", "poll_source",
           "prune_checkpoints"]

Runtime = Any  # agent.runtime.Runtime; not imported to keep this module free of the graph
Pass = Callable[[Runtime], dict[str, int]]


def default_housekeeping(settings: Settings) -> list[Pass]:
    passes: list[Pass] = [expire_and_alert, prune_checkpoints, archive_ledger]
    passes += [lambda rt, source=source: poll_source(rt, source) for source in settings.sources]
    return passes


# ---------------------------------------------------------------------- SLA


def expire_and_alert(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Remind approvers, escalate, and expire requests past their deadline (default:
    rejected), recorded in the ledger; the worker applies expiries like any answer."""
    now = now or utcnow()
    counts = {"reminded": 0, "escalated": 0, "expired": 0}
    settings: Settings = rt.settings
    for row in rt.store.pending_with_alerts():
        policy = rt.policies.get(row["function"])
        span = row["deadline"] - row["requested_at"]
        steps = ", ".join(s["id"] for s in row["request"].get("steps", []))
        if now >= row["deadline"]:
            if _expire(rt, row, policy.on_timeout, now):
                counts["expired"] += 1
            continue
        escalate = now >= row["requested_at"] + span * settings.sla_escalate_at
        remind = now >= row["requested_at"] + span * settings.sla_reminder_at
        if escalate and "escalation" not in row["alerts"]:
            verdict = "approved" if policy.on_timeout == "approve" else "rejected"
            message = (f"Approval {row['id']} ({row['function']}: {steps}) expires in "
                       f"{_human(row['deadline'] - now)} and is still unanswered; on expiry "
                       f"it is {verdict}.")
            counts["escalated"] += _alert(rt, row, "escalation", policy.escalate_to, message)
        elif remind and not row["alerts"]:
            channel = f"#approvals-{row['function'].replace('_', '-')}"
            message = (f"Reminder: approval {row['id']} ({steps}) waits for "
                       f"{', '.join(policy.approvers)}; due {row['deadline']:%Y-%m-%d %H:%M}Z.")
            counts["reminded"] += _alert(rt, row, "reminder", channel, message)
    return counts


def _human(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _alert(rt: Runtime, row: dict[str, Any], kind: str, to: str, message: str) -> bool:
    if not rt.store.claim_alert(row["id"], kind, detail=f"to {to}", actor="system:sla",
                                decision_id=row["decision_id"], plan_hash=row["plan_hash"]):
        return False
    channel = "slack" if to.startswith("#") else "email"
    try:
        rt.tools.call("notify.send", {"channel": channel, "to": to,
                                      "subject": f"Approval {kind}: {row['function']}",
                                      "body": message},
                      idempotency_key=short_id("sla", row["id"], kind, length=32))
    except (ToolCallError, DecisionOpsError):
        # The alert is recorded in the ledger; a lost notification is not retried here
        # (the outbox's own delivery is the notification system's concern).
        return True
    return True


def _expire(rt: Runtime, row: dict[str, Any], on_timeout: str, now: datetime) -> bool:
    hours = (row["deadline"] - row["requested_at"]).total_seconds() / 3600
    if on_timeout == "approve":
        answer: dict[str, Any] = {"type": "approve", "comment": "approved on SLA expiry"}
        approved = {s["id"]: s["arguments"] for s in row["request"].get("steps", [])}
    else:
        answer = Reject(reason=f"expired: no answer within the {hours:g} h SLA").model_dump()
        approved = None
    try:
        rt.store.answer_approval(row["id"], plan_hash=row["plan_hash"],
                                 status=ApprovalStatus.EXPIRED, approver="system:sla",
                                 answer=answer, approved_arguments=approved)
    except ConflictError:
        return False  # answered (or expired by another worker) in the meantime
    return True


# ---------------------------------------------------------------------- retention


def prune_checkpoints(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Delete LangGraph checkpoints of decisions finished longer than retention ago."""
    now = now or utcnow()
    cutoff = now - timedelta(days=rt.settings.retention_days)
    pruned = 0
    with rt.store.exclusive("retention") as mine:
        if not mine:
            return {"pruned": 0}
        for decision_id in (ids := rt.store.prunable(cutoff)):
            rt.checkpointer.delete_thread(decision_id)
            pruned += 1
        rt.store.mark_pruned(ids)
    return {"pruned": pruned}


_SEGMENTS_PER_TICK = 20
_PARTIAL_AFTER = timedelta(days=1)


def archive_ledger(rt: Runtime, now: datetime | None = None, *, flush: bool = False
                   ) -> dict[str, int]:
    """Archive ledger entries older than retention into compressed segments, up to
    20 segments a tick. Full segments only (``ledger_segment_entries``), so a busy loop
    does not write a small one every tick; what is due but fewer than that goes once its
    oldest entry has been due for a day, or at once with ``flush``."""
    settings: Settings = rt.settings
    if not settings.ledger_archive:
        return {"ledger_archived": 0}
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days)
    size = settings.ledger_segment_entries
    archived = 0
    with rt.store.exclusive("ledger-archive") as mine:
        if not mine:
            return {"ledger_archived": 0}
        for _ in range(_SEGMENTS_PER_TICK):
            try:
                done = rt.store.archive_ledger(cutoff, max_entries=size,
                                               min_entries=1 if flush else size,
                                               partial_if_before=cutoff - _PARTIAL_AFTER)
            except LedgerCorrupt:
                # Nothing is archived past a break in the chain; ``ledger verify`` names
                # it. The loop carries on with its other work.
                break
            if not done["segments"]:
                break
            archived += done["entries"]
    return {"ledger_archived": archived}


# ---------------------------------------------------------------------- sources


def poll_source(rt: Runtime, source: SourceConfig, now: datetime | None = None
                ) -> dict[str, int]:
    """Run ``source`` if its schedule says so; returns predictions ingested."""
    now = now or utcnow()
    state = rt.store.source_state(source.name) or {}
    due = state.get("next_run_at")
    if due is not None and now < due:
        return {f"source:{source.name}": 0}
    with rt.store.exclusive(f"source:{source.name}") as mine:
        if not mine:
            return {f"source:{source.name}": 0}
        mapping = FieldMapping.model_validate(source.mapping)
        error = None
        cursor = state.get("cursor")
        try:
            if source.type == "directory":
                count = _poll_directory(rt, source, mapping)
            else:
                count, cursor = _poll_sql(rt, source, mapping, cursor)
        except DecisionOpsError as exc:
            count, error = 0, exc.message
        rt.store.save_source_state(source.name, cursor=cursor, last_run_at=now,
                                   next_run_at=_next_run(source, now), last_error=error)
    return {f"source:{source.name}": count}


def _next_run(source: SourceConfig, now: datetime) -> datetime | None:
    if source.schedule is None:
        return None
    from croniter import croniter

    return croniter(source.schedule, now).get_next(datetime)


def _poll_directory(rt: Runtime, source: SourceConfig, mapping: FieldMapping) -> int:
    assert source.path is not None
    folder = Path(source.path)
    if not folder.is_dir():
        raise ConflictError(f"sources.{source.name}.path: {folder} is not a folder")
    count = 0
    for path in sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in (".csv", ".jsonl", ".ndjson")):
        try:
            batch = read_file(path, source.format, mapping)
        except InvalidInputError as exc:  # the whole file is unusable
            problems, usable = [exc.message], False
        else:
            result = rt.ingest(batch.predictions, source=f"{source.name}:{path.name}")
            count += len(result.new)
            problems = [str(e) for e in batch.errors]
            usable = bool(batch.predictions) or not batch.errors
        target = folder / ("processed" if usable else "rejected")
        target.mkdir(exist_ok=True)
        if problems:
            (target / f"{path.name}.errors.txt").write_text("\n".join(problems) + "\n",
                                                            encoding="utf-8")
        shutil.move(str(path), target / path.name)
    return count


def _poll_sql(rt: Runtime, source: SourceConfig, mapping: FieldMapping,
              cursor: str | None) -> tuple[int, str | None]:
    assert source.url and source.query and source.cursor_column
    engine = create_engine(source.url)
    column = source.cursor_column
    try:
        with engine.connect() as conn:
            # The query is the operator's own configuration, not user input.
            query = f"SELECT * FROM ({source.query}) AS src"
            params: dict[str, Any] = {}
            if cursor is not None:
                query += f' WHERE src."{column}" > :cursor'
                params["cursor"] = cursor
            query += f' ORDER BY src."{column}" LIMIT 10000'
            rows = [dict(r._mapping) for r in conn.execute(text(query), params)]
    finally:
        engine.dispose()
    if not rows:
        return 0, cursor
    batch = read_records(rows, mapping, location=f"source {source.name}")
    result = rt.ingest(batch.predictions, source=f"{source.name}:sql")
    return len(result.new), str(rows[-1][column])
