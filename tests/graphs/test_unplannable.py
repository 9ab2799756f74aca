"""A prediction its playbook cannot be drafted for (a template needs a feature the
prediction does not carry) goes to a person with the reason, like any plan that cannot
be made: found trying a stock-out without features as a new user would, whose leg failed
and was retried after every lease, forever, in ``planning``."""

from __future__ import annotations

from pathlib import Path

from decisionops.agent.models import Prediction
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.support import start_decisions


def test_a_playbook_that_cannot_be_drafted_for_a_prediction_sends_it_to_a_person(
        tmp_path: Path) -> None:
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0), actor="test") as rt:
        rt.enterprise.seed()
        rt.ingest([Prediction(id="s-1", model="m", kind="stockout", entity_type="sku_site",
                              entity_id="SKU-11253@DC-MILAN", score=0.95, value_at_stake=9_000,
                              observed_at="2026-11-30T08:00:00Z")], source="test")
        rt.triage_pending()
        (result,) = start_decisions(rt)
        decision = rt.store.decisions.get(result.decision_id)
        assert decision.status.value == "needs_human"
        assert "the prediction has no features.sku" in (decision.error or "")
        assert rt.store.approvals.list(decision_id=decision.id) == []
        listed = rt.store.prediction_views.get("s-1")
        assert (listed.outcome, listed.reason) == ("needs_human", "decision_needs_human")
