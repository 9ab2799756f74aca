"""Housekeeping records (``Store.ops``): checkpoint retention, and the schedule and cursor
state of each scheduled pass (a source; the ledger anchor pass, whose cursor is the last
anchor posted)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from decisionops.agent.models import utcnow
from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo
from decisionops.agent.store._ops_tables import source_state

__all__ = ["OpsRepo"]


class OpsRepo(Repo):
    # ------------------------------------------------------------------ retention

    def prunable(self, finished_before: datetime, limit: int = 500) -> list[str]:
        """Finished decisions whose checkpoints are not pruned yet, the oldest first. Only
        a terminal state sets ``finished_at``; the partial index ``ix_decisions_unpruned``
        holds just these rows, so this does not grow with the history."""
        with self.reading() as conn:
            return list(conn.scalars(
                select(t.decisions.c.id)
                .where(t.decisions.c.finished_at < finished_before,
                       t.decisions.c.checkpoint_pruned_at.is_(None))
                .order_by(t.decisions.c.finished_at).limit(limit)))

    def mark_pruned(self, decision_ids: Sequence[str]) -> None:
        """The decisions' checkpoints are deleted; with them go any model replies still
        journaled for their drafts (a version never stored: see ``llm_replies``)."""
        if not decision_ids:
            return
        ids = list(decision_ids)
        with self.transaction() as conn:
            conn.execute(update(t.decisions).where(t.decisions.c.id.in_(ids))
                         .values(checkpoint_pruned_at=utcnow()))
            conn.execute(t.llm_replies.delete().where(t.llm_replies.c.decision_id.in_(ids)))

    # ------------------------------------------------------------------ sources

    def source_state(self, name: str) -> dict[str, Any] | None:
        with self.reading() as conn:
            row = conn.execute(select(source_state).where(source_state.c.name == name)).first()
        if row is None:
            return None
        return dict(row._mapping)

    def save_source_state(self, name: str, **values: Any) -> None:
        with self.transaction() as conn:
            found = conn.execute(update(source_state).where(source_state.c.name == name)
                                 .values(**values))
            if found.rowcount == 0:
                conn.execute(insert(source_state).values(name=name, **values))
