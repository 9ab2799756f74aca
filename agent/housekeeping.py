"""Housekeeping passes of the continuous loop: the SLA sweep (the approval service's
reminders, escalations and expiry); waking the approver notification sender; checkpoint
retention and ledger archival; polling sources on their schedules.

Each pass is safe to run on every worker at once: alerts are claimed once per approval
(insert-if-absent), expiry is a compare-and-set on the pending approval, retention and
sources run inside a cluster-wide exclusive section.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from decisionops.agent.dropfolder import poll_folder
from decisionops.agent.errors import (
    ConflictError,
    DecisionOpsError,
    LedgerCorrupt,
)
from decisionops.agent.models import utcnow
from decisionops.agent.settings import Settings, SourceConfig
from decisionops.agent.sources import FieldMapping, read_records

__all__ = ["archive_ledger", "default_housekeeping", "poll_source", "post_ledger_anchor",
           "prune_checkpoints", "send_notifications", "sla_sweep"]

if TYPE_CHECKING:
    from decisionops.agent.store._anchor import Anchor

Runtime = Any  # agent.runtime.Runtime; not imported to keep this module free of the graph
Pass = Callable[[Runtime], dict[str, int]]


def default_housekeeping(settings: Settings) -> list[Pass]:
    passes: list[Pass] = [sla_sweep, prune_checkpoints, archive_ledger]
    if settings.slack_webhook_url or settings.smtp_url:
        passes.append(send_notifications)
    if settings.ledger_anchor_url:
        passes.append(post_ledger_anchor)
    passes += [lambda rt, source=source: poll_source(rt, source) for source in settings.sources]
    return passes


# ---------------------------------------------------------------------- SLA


def sla_sweep(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Remind approvers, escalate, and expire requests past their deadline, by the
    approval service's rules (``agent.approvals``); workers apply expiries like answers."""
    return rt.approvals.sweep(now, settings=rt.settings)


def send_notifications(rt: Runtime) -> dict[str, int]:
    """Wake the notification sender (``agent.notifications``): it delivers the outbox
    in its own thread, so the loop never waits on a webhook or a mail server."""
    rt.notification_sender.kick()
    return {}


# ---------------------------------------------------------------------- retention


def prune_checkpoints(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Delete LangGraph checkpoints of decisions finished longer than retention ago."""
    now = now or utcnow()
    cutoff = now - timedelta(days=rt.settings.retention_days)
    pruned = 0
    with rt.store.exclusive("retention") as mine:
        if not mine:
            return {"pruned": 0}
        for decision_id in (ids := rt.store.ops.prunable(cutoff)):
            rt.checkpointer.delete_thread(decision_id)
            pruned += 1
        rt.store.ops.mark_pruned(ids)
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
                done = rt.store.ledger.archive(cutoff, max_entries=size,
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


_ANCHOR_STATE = "ledger-anchor"


def post_configured_anchor(settings: Settings, taken: Anchor, url: str) -> int:
    """POST ``taken`` to ``url`` with what the settings say goes with every anchor: the
    Bearer token (``ledger_anchor_token``) and the Standard Webhooks signature
    (``ledger_anchor_signing_secret``); the loop's posts and ``ledger anchor --post``
    alike. Returns the receiver's status."""
    from decisionops.agent.store._anchor import post_anchor

    token, secret = settings.ledger_anchor_token, settings.ledger_anchor_signing_secret
    return post_anchor(taken, url,
                       headers={"Authorization": f"Bearer {token.get_secret_value()}"}
                       if token else {},
                       signing_secret=secret.get_secret_value() if secret else None)


def post_ledger_anchor(rt: Runtime, now: datetime | None = None) -> dict[str, int]:
    """Post an anchor of the ledger to ``ledger_anchor_url`` when one is due (one worker
    at a time). Each anchor is checked against the last one posted (walking only the
    entries since), so a chain rewritten in between is reported, never vouched for: the
    pass then counts ``anchor_failed`` and keeps the error in its state
    (``decisionops ledger verify`` names the entry)."""
    from decisionops.agent.store._anchor import Anchor
    from decisionops.agent.store.ledger import anchor

    settings: Settings = rt.settings
    now = now or utcnow()
    state = rt.store.ops.source_state(_ANCHOR_STATE) or {}
    due = state.get("next_run_at")
    if not settings.ledger_anchor_url or (due is not None and now < due):
        return {"anchors_posted": 0}
    with rt.store.exclusive(_ANCHOR_STATE) as mine:
        if not mine:
            return {"anchors_posted": 0}
        last = Anchor.model_validate_json(state["cursor"]) if state.get("cursor") else None
        posted, error, cursor = 0, None, state.get("cursor")
        try:
            current = anchor(rt.store.engine, since=last)
            post_configured_anchor(settings, current, settings.ledger_anchor_url)
            posted, cursor = 1, current.model_dump_json()
        except (LedgerCorrupt, DecisionOpsError) as exc:
            error = exc.message
        rt.store.ops.save_source_state(
            _ANCHOR_STATE, cursor=cursor, last_run_at=now, last_error=error,
            next_run_at=now + timedelta(minutes=settings.ledger_anchor_every_minutes))
    return {"anchors_posted": posted, "anchor_failed": int(error is not None)}


# ---------------------------------------------------------------------- sources


def poll_source(rt: Runtime, source: SourceConfig, now: datetime | None = None
                ) -> dict[str, int]:
    """Run ``source`` if its schedule says so; returns predictions ingested."""
    now = now or utcnow()
    state = rt.store.ops.source_state(source.name) or {}
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
                count, cursor = _poll_directory(rt, source, mapping, cursor)
            else:
                count, cursor = _poll_sql(rt, source, mapping, cursor)
        except DecisionOpsError as exc:
            count, error = 0, exc.message
        rt.store.ops.save_source_state(source.name, cursor=cursor, last_run_at=now,
                                   next_run_at=_next_run(source, now), last_error=error)
    return {f"source:{source.name}": count}


def _next_run(source: SourceConfig, now: datetime) -> datetime | None:
    if source.schedule is None:
        return None
    from croniter import croniter

    return croniter(source.schedule, now).get_next(datetime)


def _poll_directory(rt: Runtime, source: SourceConfig, mapping: FieldMapping,
                    cursor: str | None) -> tuple[int, str | None]:
    """The drop folder's rules live in ``agent.dropfolder``."""
    assert source.path is not None
    folder = Path(source.path)
    if not folder.is_dir():
        raise ConflictError(f"sources.{source.name}.path: {folder} is not a folder")
    report = poll_folder(rt, folder, name=source.name, fmt=source.format, mapping=mapping,
                         cursor=cursor)
    return report.ingested, report.cursor


_PAGE = 10_000
"""Rows a SQL source's poll reads at least (it ends where the cursor value changes)."""


def _poll_sql(rt: Runtime, source: SourceConfig, mapping: FieldMapping,
              cursor: str | None) -> tuple[int, str | None]:
    """Rows of the source's query from the stored cursor value on, in cursor order, at
    least ``_PAGE`` of them and then up to where the value changes: the rows that share
    the last value are all in one poll. The next poll reads from that value again
    (``>=``): a row committed later with it is read too, and the ones read already are
    stored already (an id is stored once). The value keeps its type (an integer cursor is
    compared as a number, a timestamp as a timestamp). Rows committed later with an older
    value than the stored one are not seen: use a cursor the database sets as rows are
    committed."""
    assert source.url and source.query and source.cursor_column
    column = source.cursor_column
    after = _cursor_value(cursor)
    # The query is the operator's own configuration, not user input.
    query = f"SELECT * FROM ({source.query}) AS src"
    params: dict[str, Any] = {}
    if cursor is not None:
        query += f' WHERE src."{column}" >= :cursor'
        params["cursor"] = after
    query += f' ORDER BY src."{column}"'
    rows: list[dict[str, Any]] = []
    try:
        engine = create_engine(source.url)
        try:
            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=1000).execute(
                    text(query), params)
                for row in result:
                    values = dict(row._mapping)
                    if len(rows) >= _PAGE and values[column] != rows[-1][column]:
                        break
                    rows.append(values)
                result.close()
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        # The source's database, not the store: said as the source's own error (its
        # state's last_error), and the loop and the other sources go on.
        raise ConflictError(f"sources.{source.name}: could not read the source's database "
                            f"({type(exc).__name__}: {_redacted(exc, source.url)})",
                            field=f"sources.{source.name}.url") from None
    if not rows:
        return 0, cursor
    batch = read_records(rows, mapping, location=f"source {source.name}")
    result_ = rt.ingest(batch.predictions, source=f"{source.name}:sql")
    return len(result_.new), _cursor_text(rows[-1][column])


def _cursor_text(value: Any) -> str:
    """A cursor value as stored: plain text for text (as before), JSON keeping the type
    of anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int):
        return json.dumps({"int": int(value)})
    if isinstance(value, float | Decimal):
        return json.dumps({"float": float(value)})
    if isinstance(value, datetime):
        return json.dumps({"datetime": value.isoformat()})
    if isinstance(value, date):
        return json.dumps({"date": value.isoformat()})
    return str(value)


def _cursor_value(stored: str | None) -> Any:
    if stored is None or not stored.startswith("{"):
        return stored
    try:
        ((kind, value),) = json.loads(stored).items()
    except (ValueError, AttributeError):
        return stored
    return {"int": int, "float": float, "datetime": datetime.fromisoformat,
            "date": date.fromisoformat}.get(kind, str)(value)


def _redacted(exc: SQLAlchemyError, url: str) -> str:
    said = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
    password = make_url(url).password
    return said.replace(str(password), "***") if password else said
