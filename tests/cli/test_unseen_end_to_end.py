"""Issue 14's end-to-end check, black-box through the CLI on predictions the project was
not tuned on: a kind under another name (an alias), a kind no playbook answers, values
missing (with and without a configured default), entities the enterprise does not have,
and a low score. Each shows in ``predictions list --json`` with the right outcome and a
reason that names what is wrong, and no approver is asked about an unknown entity."""

from __future__ import annotations

import csv
import io
import json

from tests.cli.conftest import Cli

FIELDS = ["id", "model", "model_version", "kind", "entity_type", "entity_id", "score",
          "value_at_stake", "features", "observed_at"]


def _row(pid: str, kind: str, entity_type: str, entity: str, score: float,
         value: float | None, **features: object) -> dict[str, object]:
    return {"id": pid, "model": "unseen-model", "model_version": "0.1", "kind": kind,
            "entity_type": entity_type, "entity_id": entity, "score": score,
            "value_at_stake": "" if value is None else value,
            "features": json.dumps(features), "observed_at": "2026-11-28T10:00:00Z"}


ROWS = [
    # Another team's name for our failure kind, on an asset the enterprise has.
    _row("u-alias", "equipment_failure", "asset", "AST-CMP-0003", 0.93, 316_100,
         site="PLANT-PENANG", asset_class="compressor", spare_part_sku="SKU-71083"),
    # Actionable on its face, but the asset does not exist.
    _row("u-ghost-asset", "failure", "asset", "AST-GHOST-0042", 0.97, 250_000,
         site="PLANT-PENANG", asset_class="pump"),
    # Actionable on its face, but the account does not exist.
    _row("u-ghost-account", "churn", "account", "ACC-77777", 0.91, 80_000),
    # A kind no playbook answers: must reach a person, named.
    _row("u-fraud", "card_fraud", "account", "ACC-10006", 0.99, 12_000),
    # No value at stake, no default for the kind.
    _row("u-novalue", "late_payment", "account", "ACC-10008", 0.85, None,
         invoice_id="INV-U-1"),
    # No value at stake, but the kind has a configured default.
    _row("u-default", "churn", "account", "ACC-10004", 0.9, None),
    # Too low to act on.
    _row("u-low", "churn", "account", "ACC-10002", 0.12, 90_000),
]


def _csv() -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS)
    writer.writeheader()
    writer.writerows(ROWS)
    return out.getvalue()


def test_new_predictions_each_get_an_outcome_and_reason_and_no_one_is_asked_in_vain(
        cli: Cli) -> None:
    cli.env.update({"DECISIONOPS_KIND_ALIASES": json.dumps({"equipment_failure": "failure"}),
                    "DECISIONOPS_VALUE_AT_STAKE_DEFAULTS": json.dumps({"churn": 60_000})})
    path = cli.cwd / "unseen.csv"
    path.write_text(_csv())
    summary = cli.json("ingest", str(path))
    assert summary["ingested"] == len(ROWS)
    cli("run", "--once")

    listed = {r["id"]: r for r in cli.json("predictions", "list")}
    assert set(listed) == {r["id"] for r in ROWS}  # every prediction accounted for
    outcome = {i: r["outcome"] for i, r in listed.items()}
    assert outcome == {"u-alias": "act", "u-ghost-asset": "needs_human",
                       "u-ghost-account": "needs_human", "u-fraud": "needs_human",
                       "u-novalue": "needs_human", "u-default": "act", "u-low": "drop"}
    assert listed["u-alias"]["kind"] == "failure"
    assert listed["u-alias"]["kind_as_received"] == "equipment_failure"
    assert "AST-GHOST-0042" in listed["u-ghost-asset"]["detail"]
    assert "ACC-77777" in listed["u-ghost-account"]["detail"]
    assert "card_fraud" in listed["u-fraud"]["detail"]
    assert "value_at_stake" in listed["u-novalue"]["detail"]
    assert listed["u-low"]["reason"] == "below_threshold"
    for pid in outcome:
        assert listed[pid]["reason"] and listed[pid]["detail"], pid

    # Nobody is asked about an entity that does not exist; the real ones wait for people.
    asked = cli.json("approvals", "list", "--status", "all")
    entities = {a["entity_id"] for a in asked}
    assert not entities & {"AST-GHOST-0042", "ACC-77777"}
    assert {"AST-CMP-0003", "ACC-10004"} <= entities
    ghost = cli.json("decisions", "show", listed["u-ghost-account"]["decision_id"])
    assert ghost["decision"]["status"] == "needs_human" and ghost["approvals"] == []

    # What the loop could not plan waits in the queue a person works through.
    queued = {r["id"] for r in cli.json("predictions", "queue")}
    assert {"u-fraud", "u-novalue"} <= queued
