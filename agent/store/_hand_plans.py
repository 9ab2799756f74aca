"""Plans written by hand (``hand_plans``): read by the decision's planner and by
four-eyes (the author requested the plan). The row is written by
``PredictionViewRepo.settle``, in the transaction that makes the prediction actionable;
the rules (who may write one, what it must pass) are ``agent.prediction_queue``'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from decisionops.agent.store import _tables as t
from decisionops.agent.store._db import Repo

__all__ = ["HandPlanRepo", "HandPlanRow"]

_GET = select(t.hand_plans).where(t.hand_plans.c.prediction_id == bindparam("prediction_id"))
"""Built once: every draft of every decision looks (the decision's planner)."""


@dataclass(frozen=True)
class HandPlanRow:
    """A plan a person wrote for one prediction."""

    prediction_id: str
    author: str
    hash: str
    body: dict[str, Any]
    """The plan (``agent.models.Plan`` as JSON), as the guard normalized it."""
    created_at: datetime


class HandPlanRepo(Repo):
    def get(self, prediction_id: str) -> HandPlanRow | None:
        with self.reading() as conn:
            row = conn.execute(_GET, {"prediction_id": prediction_id}).first()
        return HandPlanRow(**row._mapping) if row is not None else None
