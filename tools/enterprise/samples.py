"""Sample predictions, drawn from the reference world so every entity exists once seeded.

Three files in the native column names of ``agent.models.Prediction``:
``churn.csv`` (model ``churn-gbm``), ``failure.jsonl`` (``asset-failure-lstm``) and
``stockout.csv`` (``demand-prophet``). In CSV, ``explanation`` and ``features`` are JSON
object strings and an absent ``value`` is an empty cell. Explanations are log-odds
attributions that add up to the score's distance from the model's base rate, most
important first. A few entities are scored twice, two days apart (to exercise cooldown).
Deterministic: the same files, byte for byte, on every run::

    python -m tools.enterprise.samples --out agent/data/samples
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from decisionops.tools.enterprise._catalog import CURRENCY, World, reference_world

__all__ = [
    "COLUMNS",
    "churn_predictions",
    "failure_predictions",
    "main",
    "stockout_predictions",
    "write_samples",
]

COLUMNS = ("id", "model", "model_version", "kind", "entity_type", "entity_id", "score", "value",
           "value_at_stake", "currency", "explanation", "features", "observed_at")
SAMPLES_SEED = 20261120
_FIRST_RUN = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
_SECOND_RUN = _FIRST_RUN + timedelta(days=2)

_CHURN_DRIVERS = ("login_trend_30d", "support_tickets_90d", "nps_last_survey",
                  "seat_utilization", "days_to_renewal", "price_increase_pct",
                  "executive_sponsor_engaged", "feature_adoption_score", "invoice_days_overdue")
_FAILURE_DRIVERS = ("vibration_rms_trend", "bearing_temp_delta_c", "hours_since_overhaul",
                    "oil_particle_count", "motor_current_imbalance", "discharge_pressure_var")
_STOCKOUT_DRIVERS = ("safety_stock_gap", "promo_uplift", "lead_time_days",
                     "seasonality_week_47", "recent_sales_trend", "supplier_otif")
_OUTAGE_HOURS = {"pump": (16, 48), "compressor": (24, 72), "conveyor": (8, 36),
                 "turbine": (48, 168)}

Row = dict[str, Any]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _score(rng: random.Random) -> float:
    """A realistic spread: most entities are fine, a long tail is at risk."""
    return round(min(0.985, max(0.015, rng.betavariate(2.2, 1.9))), 3)


def _explanation(rng: random.Random, drivers: Sequence[str], score: float,
                 base_rate: float) -> dict[str, float]:
    """3-5 attributions that sum to logit(score) - logit(base_rate), largest first."""
    total = _logit(score) - _logit(base_rate)
    names = rng.sample(list(drivers), rng.randint(3, 5))
    weights = [rng.uniform(0.2, 1.0) for _ in names]
    weights[-1] = -rng.uniform(0.05, 0.3)  # one feature usually argues the other way
    scale = sum(weights)
    parts = {name: round(total * w / scale, 3) for name, w in zip(names, weights, strict=True)}
    return dict(sorted(parts.items(), key=lambda kv: -abs(kv[1])))


def _row(*, kind: str, model: str, version: str, entity_type: str, entity_id: str,
         score: float, value: float | None, value_at_stake: float, explanation: dict[str, float],
         features: dict[str, Any], observed_at: datetime) -> Row:
    return {
        "id": f"{kind}-{observed_at:%Y-%m-%d}-{entity_id}",
        "model": model, "model_version": version, "kind": kind, "entity_type": entity_type,
        "entity_id": entity_id, "score": score, "value": value,
        "value_at_stake": value_at_stake, "currency": CURRENCY, "explanation": explanation,
        "features": features,
        "observed_at": observed_at.isoformat().replace("+00:00", "Z"),
    }


def _rescored(rng: random.Random, rows: list[Row], count: int, make: Callable[..., Row]) -> None:
    """Score ``count`` at-risk entities again two days later (a cooldown must catch them)."""
    at_risk = [r for r in rows if r["score"] >= 0.72]
    for index, first in enumerate(rng.sample(at_risk, count)):
        score = round(min(0.985, first["score"] + rng.uniform(-0.05, 0.05)), 3)
        rows.append(make(first, score, _SECOND_RUN + timedelta(seconds=17 * index)))


def churn_predictions(world: World, count: int = 200, rescored: int = 6) -> list[Row]:
    rng = random.Random(f"{SAMPLES_SEED}:churn")
    chosen = set(world.adversarial_account_ids)
    others = [a for a in world.accounts if a.account_id not in chosen]
    chosen.update(a.account_id for a in rng.sample(others, count - rescored - len(chosen)))
    accounts = [a for a in world.accounts if a.account_id in chosen]

    def make(account: Any, score: float, at: datetime) -> Row:
        return _row(
            kind="churn", model="churn-gbm", version="2026.11.2", entity_type="account",
            entity_id=account.account_id, score=score, value=None, value_at_stake=account.arr,
            explanation=_explanation(rng, _CHURN_DRIVERS, score, 0.18),
            features={"region": account.region, "segment": account.segment,
                      "plan": account.plan, "tenure_months": account.tenure_months,
                      "account_manager": account.account_manager},
            observed_at=at)

    rows = []
    for index, account in enumerate(accounts):
        # Notes that try to steer an assistant belong to at-risk accounts: the
        # adversarial tests need them to reach planning.
        score = round(rng.uniform(0.74, 0.93), 3) if account.adversarial else _score(rng)
        rows.append(make(account, score, _FIRST_RUN + timedelta(seconds=11 * index)))
    by_id = {a.account_id: a for a in accounts}
    _rescored(rng, rows, rescored,
              lambda first, score, at: make(by_id[first["entity_id"]], score, at))
    return rows


def failure_predictions(world: World, count: int = 120, rescored: int = 6) -> list[Row]:
    rng = random.Random(f"{SAMPLES_SEED}:failure")
    picked = {a.asset_id for a in rng.sample(list(world.assets), count - rescored)}
    assets = [a for a in world.assets if a.asset_id in picked]

    def make(asset: Any, score: float, at: datetime, rul: float | None = None) -> Row:
        if rul is None:
            rul = round(max(12.0, (1 - score) * 1800 * rng.uniform(0.6, 1.2)), 1)
        low, high = _OUTAGE_HOURS[asset.asset_class]
        stake = round(asset.downtime_cost_per_hour * rng.uniform(low, high), -2)
        return _row(
            kind="failure", model="asset-failure-lstm", version="3.4.0", entity_type="asset",
            entity_id=asset.asset_id, score=score, value=rul, value_at_stake=stake,
            explanation=_explanation(rng, _FAILURE_DRIVERS, score, 0.08),
            features={"site": asset.site, "asset_class": asset.asset_class,
                      "spare_part_sku": asset.spare_part_sku,
                      "remaining_useful_life_hours": rul},
            observed_at=at)

    rows = [make(asset, _score(rng), _FIRST_RUN + timedelta(minutes=30, seconds=13 * index))
            for index, asset in enumerate(assets)]
    by_id = {a.asset_id: a for a in assets}
    _rescored(rng, rows, rescored, lambda first, score, at: make(
        by_id[first["entity_id"]], score, at, rul=round(max(12.0, first["value"] - 48), 1)))
    return rows


def stockout_predictions(world: World, rescored: int = 6) -> list[Row]:
    rng = random.Random(f"{SAMPLES_SEED}:stockout")
    skus = {s.sku: s for s in world.skus}
    shortages = {f"{s.sku}@{s.site}": s for s in world.shortages}

    def make(key: str, score: float, at: datetime) -> Row:
        shortage = shortages[key]
        item = skus[shortage.sku]
        return _row(
            kind="stockout", model="demand-prophet", version="1.9.1", entity_type="sku_site",
            entity_id=key, score=score, value=float(shortage.forecast_units),
            value_at_stake=round(shortage.shortfall_units * item.unit_price, 2),
            explanation=_explanation(rng, _STOCKOUT_DRIVERS, score, 0.12),
            features={"sku": shortage.sku, "site": shortage.site,
                      "on_hand": shortage.on_hand, "forecast_units": shortage.forecast_units,
                      "shortfall_units": shortage.shortfall_units,
                      "surplus_site": shortage.surplus_site, "supplier": item.supplier},
            observed_at=at)

    rows = []
    for index, key in enumerate(sorted(shortages)):
        shortage = shortages[key]
        gap = shortage.shortfall_units / shortage.forecast_units
        score = round(min(0.985, max(0.02, 0.1 + 0.85 * gap + rng.gauss(0, 0.1))), 3)
        rows.append(make(key, score, _FIRST_RUN + timedelta(hours=1, seconds=7 * index)))
    _rescored(rng, rows, rescored, lambda first, score, at: make(first["entity_id"], score, at))
    return rows


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def write_samples(out: Path, world: World | None = None) -> dict[str, Path]:
    """Write the three sample files into ``out``; return their paths by kind."""
    world = world or reference_world()
    out.mkdir(parents=True, exist_ok=True)
    paths = {"churn": out / "churn.csv", "failure": out / "failure.jsonl",
             "stockout": out / "stockout.csv"}
    for kind, rows in (("churn", churn_predictions(world)),
                       ("stockout", stockout_predictions(world))):
        with paths[kind].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    with paths["failure"].open("w", encoding="utf-8") as handle:
        for row in failure_predictions(world):
            handle.write(json.dumps(row, separators=(",", ":")) + "\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.enterprise.samples",
        description="Write the sample prediction files, coherent with the reference "
                    "enterprise seed.",
        epilog="example: python -m tools.enterprise.samples --out agent/data/samples")
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    for kind, path in write_samples(args.out).items():
        print(f"{kind:9} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
