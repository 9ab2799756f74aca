"""Policy approves a step only when it acts on what the prediction is about. Found in a
black-box trial: the rule compared only arguments named ``<entity_type>_id``, so

- stock-out transfers (entity type ``sku_site``, whose tools name a ``sku`` and sites)
  were auto-approved and ran for entities that do not exist (``BOGUS-1``), or moved
  another SKU between other sites than the prediction's;
- a hand plan's credit to an account ran without a finance approver on a prediction
  about a ``customer``: no argument was named ``customer_id``.

A composite entity type names its parts (``sku_site`` → ``SKU@SITE``): a step naming a
sku or a site must name the prediction's (a transfer's source is another site; its
destination is the prediction's). A step naming an identifier of another type
(``account_id`` on a customer) acts on something the prediction did not score."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from decisionops.agent.models import Prediction
from decisionops.agent.prediction_queue import QueueUser
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.support import pending, start_decisions

OPS = QueueUser("olga@ops", "operator", "test")


def _stockout(entity_id: str, *, sku: str = "SKU-11253", site: str = "DC-MILAN",
              surplus: str = "DC-LYON") -> Prediction:
    return Prediction(id=f"s-{entity_id}", model="demand", kind="stockout",
                      entity_type="sku_site", entity_id=entity_id, score=0.7,
                      value_at_stake=100_000, observed_at=datetime(2026, 11, 20, tzinfo=UTC),
                      features={"sku": sku, "site": site, "shortfall_units": 120,
                                "surplus_site": surplus})


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    with Runtime(Settings(home=tmp_path / "home", holdout_share=0.0), actor="w") as runtime:
        runtime.enterprise.seed()
        yield runtime


def _routed(rt: Runtime, prediction: Prediction) -> tuple[str, dict]:
    rt.ingest([prediction], source="test")
    rt.triage_pending()
    (started,) = start_decisions(rt)
    return started.decision_id, pending(rt, started.decision_id)


def test_a_transfer_for_the_prediction_s_own_sku_and_site_is_approved_by_policy(
        rt: Runtime) -> None:
    decision_id, asked = _routed(rt, _stockout("SKU-11253@DC-MILAN"))
    assert "supply_chain" not in asked
    assert len(rt.enterprise.effects("erp.create_stock_transfer")) == 1
    assert rt.store.decisions.get(decision_id).status.value == "completed"


@pytest.mark.parametrize(("entity_id", "why"), [
    ("BOGUS-1", "the prediction's entity BOGUS-1 does not name a sku and a site "
                "(sku_site: SKU@SITE)"),
    ("SKU-70239@DC-MILAN", "step transfer acts on sku=SKU-11253, not on SKU-70239 "
                           "(the prediction's sku)"),
    ("SKU-11253@DC-SYDNEY", "step transfer acts on to_site=DC-MILAN, not on DC-SYDNEY "
                            "(the prediction's site)"),
])
def test_a_transfer_not_for_the_prediction_s_sku_and_site_goes_to_its_approvers(
        rt: Runtime, entity_id: str, why: str) -> None:
    _, asked = _routed(rt, _stockout(entity_id))
    assert set(asked) == {"supply_chain"}, asked
    reason = rt.store.approvals.get(asked["supply_chain"]["id"]).reason or ""
    assert why in reason, reason
    assert reason.endswith("its approvers decide"), reason
    assert rt.enterprise.effects("erp.create_stock_transfer") == []


def test_a_hand_plan_credit_on_a_prediction_about_a_customer_goes_to_finance(
        rt: Runtime) -> None:
    prediction = Prediction(id="h1", model="m", kind="fraud", entity_type="customer",
                            entity_id="CUST-1", score=0.97, value_at_stake=12_000,
                            observed_at=datetime(2026, 11, 2, 9, tzinfo=UTC))
    rt.ingest([prediction], source="test")
    rt.triage_pending()
    rt.queue.plan_by_hand("h1", """
- id: credit
  function: finance
  tool: finance.issue_credit
  arguments: {account_id: ACC-10031, amount: 100, currency: EUR, reason: goodwill}
  risk: low
""", by=OPS)
    (started,) = start_decisions(rt)
    asked = pending(rt, started.decision_id)
    assert set(asked) == {"finance"}, asked
    reason = rt.store.approvals.get(asked["finance"]["id"]).reason or ""
    assert ("step credit acts on account_id=ACC-10031; the prediction is about customer "
            "CUST-1 and does not name it: its approvers decide") in reason, reason
    assert rt.enterprise.effects("finance.issue_credit") == []


@pytest.mark.parametrize(("target", "value", "elsewhere"), [
    # Found in black-box trials: a plugin's cards.block(card_number) on another card ran
    # on policy alone, on a prediction about a card (only ``card`` / ``card_id`` counted);
    # then camelCase, upper case, bare ``id``, ``customer``, ``iban``, ``email``, nested
    # objects: every target value must be the entity or something the prediction names.
    ("card_number", "CARD-OTHER-2", True),
    ("card_number", "CARD-5009", False),
    ("card", "CARD-OTHER-2", True),
    ("from_card_id", "CARD-OTHER-2", True),
    ("cardNumber", "CARD-OTHER-2", True),
    ("CARD_ID", "CARD-OTHER-2", True),
    ("account_number", "ACC-1", True),
    ("accountId", "ACC-1", True),
    ("id", "ACC-1", True),
    ("target", "ACC-1", True),
    ("customer", "ACC-1", True),
    ("iban", "DE00999999", True),
    ("email", "attacker@evil.example", True),
    ("payload", {"account_id": "ACC-1"}, True),
    ("cards", ["CARD-5009", "CARD-OTHER"], True),
    ("merchant_ref", "M-7", False),      # named by the prediction's features
    ("currency", "EUR", False),          # a currency names no entity
    ("team", "payments-oncall", False),  # the tool's qualifier (below)
])
def test_what_a_target_argument_names_is_read_from_its_value(
        target: str, value: object, elsewhere: bool) -> None:
    from decisionops.agent.targets import Subject, acts_elsewhere

    subject = Subject("card", "CARD-5009", frozenset({"M-7"}))
    why = acts_elsewhere("s1", {target: value}, [target], subject, qualifiers=("team",))
    assert (why is not None) is elsewhere, why


@pytest.mark.parametrize(("arguments", "elsewhere"), [
    # Found in a black-box trial: a transfer *out of* the site at risk passed, since one
    # of its sites was the prediction's.
    ({"sku": "SKU-22623", "from_site": "DC-CHICAGO", "to_site": "DC-RENO"}, True),
    ({"sku": "SKU-22623", "from_site": "DC-RENO", "to_site": "DC-CHICAGO"}, False),
    ({"sku": "SKU-99999", "from_site": "DC-RENO", "to_site": "DC-CHICAGO"}, True),
    ({"sku": "SKU-22623", "from_site": "DC-RENO"}, True),
    ({"sku": "SKU-22623", "from_site": "DC-LYON"}, False),  # the surplus site its features name
])
def test_a_transfer_must_go_to_the_site_at_risk(arguments: dict, elsewhere: bool) -> None:
    from decisionops.agent.targets import Subject, acts_elsewhere

    subject = Subject("sku_site", "SKU-22623@DC-CHICAGO", frozenset({"DC-LYON"}))
    why = acts_elsewhere("t", arguments, ["sku", "from_site", "to_site"], subject)
    assert (why is not None) is elsewhere, why
