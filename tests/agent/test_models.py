from __future__ import annotations

import datetime
import decimal
import enum

import pytest
from pydantic import ValidationError

from decisionops.agent.hashing import canonical_json, digest
from decisionops.agent.models import Plan, Prediction, Step, decision_id_for

GOOD = {"id": "p-1", "model": "m", "kind": "churn", "entity_type": "account",
        "entity_id": "ACC-1", "score": 0.5, "observed_at": "2026-11-01T00:00:00Z"}


@pytest.mark.parametrize(("field", "value"), [
    ("score", float("nan")), ("score", float("inf")), ("score", 1.5), ("score", -0.1),
    ("entity_id", "ACC\u202e1"), ("entity_id", "ACC\x001"), ("entity_id", ""),
    ("entity_id", "a b"), ("observed_at", "2026-11-01T00:00:00"), ("kind", "Churn!"),
    ("value_at_stake", -5), ("value_at_stake", float("inf")), ("value_at_stake", 1e300),
])
def test_prediction_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as err:
        Prediction.model_validate({**GOOD, field: value})
    assert err.value.errors()[0]["loc"][0] == field


def test_ids_are_normalized_and_decision_ids_deterministic() -> None:
    nfd = Prediction.model_validate({**GOOD, "entity_id": "Cafe\u0301"})
    assert nfd.entity_id == "Caf\u00e9"
    assert decision_id_for("p-1") == decision_id_for("p-1") != decision_id_for("p-2")


def test_hash_is_stable_across_int_and_float() -> None:
    assert digest({"amount": 150}) == digest({"amount": 150.0})
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_canonical_form_of_subclasses_keys_and_nested_numbers() -> None:
    # Pinned: ledger hashes of stored entries are recomputed from this form forever.
    class Color(enum.StrEnum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    class Amount(float):
        pass

    class Row(dict):  # type: ignore[type-arg]
        pass

    value = {"s": Color.RED, "i": Level.HIGH, "f": Amount(2.0), "g": Amount(2.5),
             "row": Row({"x": 1.0}), "t": (1.0, "a", [2.0, {"k": 3.5}]), 1: "int key",
             "b": True, "n": None, "d": decimal.Decimal("1.50"),
             "at": datetime.datetime(2026, 11, 27, 8, 0, tzinfo=datetime.UTC)}
    assert canonical_json(value) == (
        '{"1":"int key","at":"2026-11-27T08:00:00+00:00","b":true,"d":"1.50","f":2,"g":2.5,'
        '"i":3,"n":null,"row":{"x":1},"s":"red","t":[1,"a",[2,{"k":3.5}]]}')
    with pytest.raises(ValueError, match="non-finite"):
        canonical_json({"x": [float("nan")]})


def _step(sid: str, *deps: str) -> Step:
    return Step(id=sid, function="sales", tool="crm.create_task", arguments={},
                depends_on=deps)


def test_plan_rejects_cycles_unknown_deps_and_duplicates() -> None:
    with pytest.raises(ValidationError, match="cycle"):
        Plan(decision_id="d", planner="t", steps=(_step("a", "b"), _step("b", "a")))
    with pytest.raises(ValidationError, match="unknown step"):
        Plan(decision_id="d", planner="t", steps=(_step("a", "zz"),))
    with pytest.raises(ValidationError, match="duplicate"):
        Plan(decision_id="d", planner="t", steps=(_step("a"), _step("a")))


def test_plan_waves_and_dependents() -> None:
    plan = Plan(decision_id="d", planner="t",
                steps=(_step("a"), _step("b", "a"), _step("c"), _step("d", "b")))
    assert plan.topological_order() == [["a", "c"], ["b"], ["d"]]
    assert plan.dependents_of({"a"}) == {"b", "d"}


def test_plan_hash_follows_copies() -> None:
    plan = Plan(decision_id="d", planner="t", steps=(_step("a"),))
    before = plan.hash
    assert plan.model_copy(update={"version": 2}).hash != before
