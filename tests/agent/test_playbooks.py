from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.models import Prediction
from agent.playbooks import load_playbooks


def _prediction(**over: object) -> Prediction:
    base = dict(id="p-1", model="churn-gbm", kind="churn", entity_type="account",
                entity_id="ACC-10001", score=0.9, value_at_stake=40_000,
                features={"plan": "pro", "segment": "enterprise"},
                observed_at="2026-11-01T08:00:00Z")
    return Prediction.model_validate({**base, **over})


def test_bundled_playbooks_cover_three_kinds() -> None:
    book = load_playbooks()
    assert {"churn", "failure", "stockout"} <= book.kinds()


def test_playbook_planner_is_deterministic_and_typed() -> None:
    book = load_playbooks()
    playbook = book.for_prediction(_prediction())
    first = playbook.draft(_prediction(), decision_id="dec_1")
    second = playbook.draft(_prediction(), decision_id="dec_1")
    assert first.hash == second.hash
    offer = first.step("retention_offer")
    assert offer.arguments["discount_pct"] == 20  # native int from a whole-value template
    assert first.step("goodwill_credit").depends_on == ("retention_offer",)


def test_when_condition_drops_step_and_its_dependency_edge() -> None:
    book = load_playbooks()
    small = _prediction(value_at_stake=5_000)
    plan = book.for_prediction(small).draft(small, decision_id="dec_2")
    assert "goodwill_credit" not in {s.id for s in plan.steps}


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "custom.yaml"
    path.write_text(text)
    return folder


def test_user_playbook_replaces_bundled_one_by_name(tmp_path: Path) -> None:
    folder = _write(tmp_path / "pb", """
name: churn-retention
kind: churn
trigger: {min_score: 0.99}
steps:
  - id: only
    function: support
    tool: support.open_ticket
    risk: low
    arguments: {account_id: "{{ prediction.entity_id }}", priority: low, subject: s, body: b}
""")
    book = load_playbooks(folder)
    assert book.get("churn-retention").trigger.min_score == 0.99


@pytest.mark.parametrize(("body", "expected"), [
    ("name: bad\nkind: churn\nsteps: []\n", "trigger"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 2}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}}\n", "trigger.min_score"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {}, depends_on: [zz]}\n", "unknown step 'zz'"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: crm.create_task, arguments: {x: '{{ oops( }}'}}\n", "template"),
    ("name: bad\nkind: churn\ntrigger: {min_score: 0.5}\nsteps:\n  - {id: a, function: sales, "
     "tool: notatool, arguments: {}}\n", "steps.0.tool"),
    ("name: [unclosed\n", "not valid YAML"),
])
def test_invalid_playbooks_name_file_playbook_and_field(tmp_path: Path, body: str,
                                                        expected: str) -> None:
    folder = _write(tmp_path / "pb", body)
    with pytest.raises(ConfigError) as err:
        load_playbooks(folder)
    message = str(err.value)
    assert "custom.yaml" in message
    assert expected in message


def test_missing_template_variable_is_an_error_naming_the_argument() -> None:
    book = load_playbooks()
    prediction = _prediction(kind="stockout", entity_type="sku_site", entity_id="SKU-1@DC-A",
                             features={"surplus_site": "DC-B", "shortfall_units": 10})
    with pytest.raises(Exception, match=r"steps\.transfer\.arguments\.sku"):
        book.for_prediction(prediction).draft(prediction, decision_id="dec_3")
