"""Urgency and importance signals a playbook reads from a prediction.

A prediction may say *when* the event is expected (its horizon) and *how much* the
entity matters (its criticality). Both arrive as features, because every source already
maps foreign columns onto ``Prediction.features``:

- ``horizon_days``: the ``horizon_days`` feature, else ``horizon_hours`` / 24, else the
  feature the playbook names in ``urgency.horizon_from`` (a model's own name for it, such
  as ``remaining_useful_life_hours``). A value that is not a finite number of at least 0
  counts as missing.
- ``criticality``: the ``criticality`` feature, else ``<entity_type>_criticality``
  (``asset_criticality`` for an asset), lower-cased. A value that is not text counts as
  missing.

A playbook turns them into one flag with a structured ``urgency`` block (no expression
to evaluate)::

    urgency:
      horizon_days_at_most: 14
      criticality_in: [critical, high]
      horizon_from: {feature: remaining_useful_life_hours, unit: hours}

``urgent`` is true when the horizon is known and at most the bound, or the criticality
is known and listed. Missing horizon and criticality → not urgent: the plain path.
What is not here: how templates use the flag (``agent.playbooks``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from decisionops.agent.models import Prediction

__all__ = ["Urgency", "signals"]


class HorizonFeature(BaseModel):
    """A feature that carries the horizon under another name."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    feature: str = Field(min_length=1, max_length=100)
    unit: Literal["days", "hours"] = "days"


class Urgency(BaseModel):
    """When a prediction is urgent for a playbook; either bound may be left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    horizon_days_at_most: float | None = Field(None, ge=0)
    """Urgent when the event is expected within this many days."""
    criticality_in: tuple[str, ...] = ()
    """Urgent when the entity's criticality is one of these (compared lower-case)."""
    horizon_from: HorizonFeature | None = None
    """Where the horizon is when the prediction has no ``horizon_days``/``horizon_hours``."""

    def urgent(self, horizon_days: float | None, criticality: str | None) -> bool:
        if (self.horizon_days_at_most is not None and horizon_days is not None
                and horizon_days <= self.horizon_days_at_most):
            return True
        wanted = {c.strip().lower() for c in self.criticality_in}
        return criticality is not None and criticality in wanted


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _horizon_days(features: dict[str, Any], other: HorizonFeature | None) -> float | None:
    days = _number(features.get("horizon_days"))
    if days is not None:
        return days
    hours = _number(features.get("horizon_hours"))
    if hours is not None:
        return round(hours / 24, 4)
    if other is None:
        return None
    value = _number(features.get(other.feature))
    if value is None:
        return None
    return value if other.unit == "days" else round(value / 24, 4)


def _criticality(features: dict[str, Any], entity_type: str) -> str | None:
    for key in ("criticality", f"{entity_type}_criticality"):
        value = features.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def signals(prediction: Prediction, urgency: Urgency | None) -> dict[str, Any]:
    """``horizon_days``, ``criticality`` and ``urgent`` for a playbook's templates."""
    horizon = _horizon_days(prediction.features,
                            urgency.horizon_from if urgency is not None else None)
    criticality = _criticality(prediction.features, prediction.entity_type)
    urgent = urgency.urgent(horizon, criticality) if urgency is not None else False
    return {"horizon_days": horizon, "criticality": criticality, "urgent": urgent}
