"""Kind aliases at intake: a source's kind name mapped onto ours on every path in (the
runtime's ingest, which the CLI, the API and the polled sources all go through), with
the name as received kept on the prediction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from decisionops.agent.housekeeping import poll_source
from decisionops.agent.models import Prediction
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings, SourceConfig
from decisionops.agent.sources import apply_kind_aliases
from decisionops.agent.store._predictions import row_leaf

ALIASES = {"equipment_failure": "failure", "customer_attrition": "churn"}


def _p(kind: str) -> Prediction:
    return Prediction(id=f"p-{kind}", model="m", kind=kind, entity_type="asset",
                      entity_id="PUMP-1", score=0.9, value_at_stake=1000,
                      observed_at=datetime(2026, 11, 1, tzinfo=UTC))


def test_aliased_kinds_are_mapped_and_remembered() -> None:
    plain, aliased = apply_kind_aliases([_p("churn"), _p("equipment_failure")], ALIASES)
    assert (plain.kind, plain.kind_as_received) == ("churn", None)
    assert (aliased.kind, aliased.kind_as_received) == ("failure", "equipment_failure")
    assert apply_kind_aliases([_p("fraud")], {}) == [_p("fraud")]


def test_an_unaliased_prediction_hashes_as_before() -> None:
    """Rows stored before aliases existed still prove against their batch entries."""
    assert "kind_as_received" not in _p("churn").model_dump_json()
    again = Prediction.model_validate_json(_p("churn").model_dump_json())
    assert row_leaf(again) == row_leaf(_p("churn"))


def test_a_directory_source_applies_the_aliases(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "scores.jsonl").write_text(
        '{"id": "d-1", "model": "m", "kind": "equipment_failure", "entity_type": "asset", '
        '"entity_id": "PUMP-7", "score": 0.9, "value_at_stake": 80000, '
        '"observed_at": "2026-11-01T09:00:00Z"}\n')
    settings = Settings(home=tmp_path / "home", kind_aliases=ALIASES)
    with Runtime(settings, actor="w") as rt:
        source = SourceConfig(name="drop", type="directory", path=drop)
        poll_source(rt, source)  # the first look only notes the file (it may be unfinished)
        assert poll_source(rt, source) == {"source:drop": 1}
        stored = rt.store.predictions.get("d-1")
        assert (stored.kind, stored.kind_as_received) == ("failure", "equipment_failure")
        rt.triage_pending()
        view = rt.store.prediction_views.get("d-1")
        assert (view.kind_as_received, view.playbook) == ("equipment_failure",
                                                          "failure-preventive-repair")
        assert rt.store.predictions.proof("d-1").ok


def test_a_default_given_under_an_alias_is_the_default_of_our_kind(tmp_path: Path) -> None:
    """Found by review: triage looks defaults up by our kind, after aliases apply, so a
    default keyed by the source's name did nothing."""
    settings = Settings(home=tmp_path, kind_aliases=ALIASES,
                        value_at_stake_defaults={"equipment_failure": 50_000})
    assert settings.value_at_stake_defaults == {"failure": 50_000}
    same = Settings(home=tmp_path, kind_aliases=ALIASES,
                    value_at_stake_defaults={"equipment_failure": 50_000, "failure": 50_000})
    assert same.value_at_stake_defaults == {"failure": 50_000}
    with pytest.raises(ValidationError, match="value_at_stake_defaults: 'equipment_failure'"):
        Settings(home=tmp_path, kind_aliases=ALIASES,
                 value_at_stake_defaults={"equipment_failure": 50_000, "failure": 10})
