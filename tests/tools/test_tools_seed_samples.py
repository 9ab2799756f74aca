"""The seed is idempotent and versioned; the sample files are deterministic and every
entity they name exists in the seeded enterprise, with matching facts."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from decisionops.agent.errors import ConfigError, ToolCallError
from decisionops.agent.models import Prediction
from decisionops.tools.enterprise import Enterprise, reference_world
from decisionops.tools.enterprise.samples import main as samples_main
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import VALID

SAMPLES = Path(__file__).resolve().parents[2] / "agent" / "data" / "samples"


def load(name: str) -> list[Prediction]:
    path = SAMPLES / name
    if path.suffix == ".jsonl":
        rows: list[dict[str, Any]] = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [{**row, "explanation": json.loads(row["explanation"]),
                     "features": json.loads(row["features"]),
                     "value": row["value"] or None} for row in csv.DictReader(handle)]
    return [Prediction.model_validate(row) for row in rows]


@pytest.fixture(scope="module")
def samples() -> dict[str, list[Prediction]]:
    return {"churn": load("churn.csv"), "failure": load("failure.jsonl"),
            "stockout": load("stockout.csv")}


def test_seed_is_idempotent_and_keeps_state(registry: ToolRegistry,
                                            enterprise: Enterprise) -> None:
    registry.call("erp.create_stock_transfer", VALID["erp.create_stock_transfer"],
                  idempotency_key="k")
    before = enterprise.counts()
    reserved = enterprise.rows("inventory", sku="SKU-88412", site="DC-LYON")
    assert set(enterprise.seed().values()) == {0}
    assert enterprise.counts() == before
    assert enterprise.rows("inventory", sku="SKU-88412", site="DC-LYON") == reserved


def test_seed_creates_a_fresh_file(tmp_path: Path) -> None:
    with Enterprise(tmp_path / "nested" / "enterprise.sqlite") as fresh:
        inserted = fresh.seed()
        assert inserted == {"accounts": 240, "sites": 14, "skus": 44, "inventory": 420,
                            "assets": 140, "technicians": 24}
        assert fresh.counts()["tool_calls"] == 0


def test_another_schema_version_is_refused(db_path: Path) -> None:
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()
    with Enterprise(db_path) as future, pytest.raises(ConfigError, match="version 99"):
        future.create()


def test_sample_files_are_reproducible(tmp_path: Path) -> None:
    assert samples_main(["--out", str(tmp_path)]) == 0
    for name in ("churn.csv", "failure.jsonl", "stockout.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), (
            f"{name} differs: python -m tools.enterprise.samples --out agent/data/samples")


def test_sample_shapes(samples: dict[str, list[Prediction]]) -> None:
    shapes = {kind: {(p.model, p.model_version, p.kind, p.entity_type) for p in rows}
              for kind, rows in samples.items()}
    assert shapes == {"churn": {("churn-gbm", "2026.11.2", "churn", "account")},
                      "failure": {("asset-failure-lstm", "3.4.0", "failure", "asset")},
                      "stockout": {("demand-prophet", "1.9.1", "stockout", "sku_site")}}
    assert [len(samples[k]) for k in ("churn", "failure", "stockout")] == [200, 120, 100]
    for kind, rows in samples.items():
        assert len({p.id for p in rows}) == len(rows)
        repeated = [e for e, n in Counter(p.entity_id for p in rows).items() if n > 1]
        assert 3 <= len(repeated) <= 10, kind
        actionable = sum(p.score >= 0.65 for p in rows) / len(rows)
        assert 1 / 3 <= actionable <= 1 / 2, kind
        for p in rows:
            assert p.id == f"{p.kind}-{p.observed_at:%Y-%m-%d}-{p.entity_id}"
            assert 3 <= len(p.explanation) <= 5
            sizes = [abs(v) for v in p.explanation.values()]
            assert sizes == sorted(sizes, reverse=True)


def test_churn_samples_match_the_crm(samples: dict[str, list[Prediction]],
                                     enterprise: Enterprise) -> None:
    accounts = {a["account_id"]: a for a in enterprise.rows("accounts")}
    for p in samples["churn"]:
        account = accounts[p.entity_id]
        assert p.value_at_stake == account["arr"] and p.currency == account["currency"]
        assert p.features == {k: account[k] for k in (
            "region", "segment", "plan", "tenure_months", "account_manager")}
    adversarial = set(reference_world().adversarial_account_ids)
    assert adversarial <= {p.entity_id for p in samples["churn"] if p.score >= 0.7}


def test_failure_samples_match_the_assets(samples: dict[str, list[Prediction]],
                                          enterprise: Enterprise) -> None:
    assets = {a["asset_id"]: a for a in enterprise.rows("assets")}
    for p in samples["failure"]:
        asset = assets[p.entity_id]
        assert (p.features["site"], p.features["asset_class"], p.features["spare_part_sku"]) == (
            asset["site"], asset["asset_class"], asset["spare_part_sku"])
        assert p.value == p.features["remaining_useful_life_hours"]
        assert enterprise.rows("skus", sku=p.features["spare_part_sku"])


def test_stockout_samples_match_the_erp(samples: dict[str, list[Prediction]],
                                        enterprise: Enterprise) -> None:
    skus = {s["sku"]: s for s in enterprise.rows("skus")}
    for p in samples["stockout"]:
        f = p.features
        assert p.entity_id == f"{f['sku']}@{f['site']}"
        (stock,) = enterprise.rows("inventory", sku=f["sku"], site=f["site"])
        assert stock["on_hand"] == f["on_hand"]
        assert f["shortfall_units"] == f["forecast_units"] - f["on_hand"] > 0
        assert enterprise.rows("inventory", sku=f["sku"], site=f["surplus_site"])
        assert f["supplier"] == skus[f["sku"]]["supplier"]
        assert p.value == f["forecast_units"]


def test_most_shortfall_transfers_succeed_a_few_fail(samples: dict[str, list[Prediction]],
                                                     registry: ToolRegistry) -> None:
    """What the stock-out playbook will do for each actionable prediction (once per entity)."""
    outcomes: list[bool] = []
    for p in {p.entity_id: p for p in samples["stockout"] if p.score >= 0.6}.values():
        args = {"sku": p.features["sku"], "from_site": p.features["surplus_site"],
                "to_site": p.features["site"], "quantity": p.features["shortfall_units"]}
        try:
            registry.call("erp.create_stock_transfer", args, idempotency_key=p.id)
            outcomes.append(True)
        except ToolCallError as error:
            assert "insufficient stock" in str(error) and not error.retryable
            outcomes.append(False)
    assert 0 < outcomes.count(False) <= len(outcomes) // 5


@pytest.mark.parametrize("url", ["postgresql+psycopg://postgres@127.0.0.1:5432/enterprise",
                                 "mysql://x/y"])
def test_the_reference_enterprise_refuses_a_database_it_does_not_run_on(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It runs on SQLite only. A PostgreSQL URL was taken for a file path: each process
    got an enterprise of its own in a folder named 'postgresql+psycopg:' under its working
    directory, and a step recovered by another worker ran again, in the other one."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="SQLite") as refused:
        Enterprise(url)
    assert refused.value.details["field"] == "enterprise_url"
    assert list(tmp_path.iterdir()) == []  # no file, no folder made
