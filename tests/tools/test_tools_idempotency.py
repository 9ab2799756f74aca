"""Idempotency: one effect per key; the same key with other arguments is a conflict."""

from __future__ import annotations

import pytest

from decisionops.agent.errors import ConflictError
from decisionops.agent.hashing import digest
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import CREATED_IN, READS, VALID


@pytest.mark.parametrize("tool", sorted(VALID))
def test_same_key_twice_is_one_effect(registry: ToolRegistry, enterprise: Enterprise,
                                      tool: str) -> None:
    first = registry.call(tool, VALID[tool], idempotency_key=f"dec-1:{tool}")
    again = registry.call(tool, VALID[tool], idempotency_key=f"dec-1:{tool}")

    assert not first.replayed
    assert again.replayed
    assert again.result == first.result
    assert len(enterprise.rows(CREATED_IN[tool])) == 1
    (effect,) = enterprise.effects()
    assert (effect.tool, effect.idempotency_key) == (tool, f"dec-1:{tool}")
    assert effect.arguments_hash == digest(registry.validate(tool, VALID[tool]))
    assert effect.result == first.result


@pytest.mark.parametrize("tool", sorted(VALID))
def test_same_key_other_arguments_conflicts_and_changes_nothing(
        registry: ToolRegistry, enterprise: Enterprise, tool: str) -> None:
    registry.call(tool, VALID[tool], idempotency_key="k")
    counts = enterprise.counts()
    changed = dict(VALID[tool])
    field = next(k for k in ("subject", "reason", "quantity", "duration_months", "due_in_days",
                             "due_within_hours", "amount") if k in changed)
    changed[field] = changed[field] + (1 if isinstance(changed[field], int | float) else " v2")

    with pytest.raises(ConflictError) as caught:
        registry.call(tool, changed, idempotency_key="k")

    assert caught.value.details["idempotency_key"] == "k"
    assert enterprise.counts() == counts
    assert len(enterprise.effects()) == 1


def test_key_reused_for_another_tool_conflicts(registry: ToolRegistry,
                                               enterprise: Enterprise) -> None:
    registry.call("crm.create_task", VALID["crm.create_task"], idempotency_key="k")
    with pytest.raises(ConflictError):
        registry.call("support.open_ticket", VALID["support.open_ticket"], idempotency_key="k")
    assert enterprise.rows("tickets") == []


def test_equivalent_arguments_replay_instead_of_conflicting(registry: ToolRegistry) -> None:
    args = {"account_id": "ACC-10001", "amount": 150, "currency": "EUR", "reason": "Goodwill"}
    registry.call("finance.issue_credit", args, idempotency_key="k")
    # 150.0 is 150, and an omitted default is the default
    assert registry.call("finance.issue_credit", {**args, "amount": 150.0},
                         idempotency_key="k").replayed
    offer = {k: v for k, v in VALID["crm.create_retention_offer"].items() if k != "note"}
    registry.call("crm.create_retention_offer", offer, idempotency_key="o")
    assert registry.call("crm.create_retention_offer", {**offer, "note": ""},
                         idempotency_key="o").replayed


def test_record_ids_derive_from_the_key(registry: ToolRegistry) -> None:
    one = registry.call("crm.create_task", VALID["crm.create_task"], idempotency_key="a")
    two = registry.call("crm.create_task", VALID["crm.create_task"], idempotency_key="b")
    assert one.result["task_id"] != two.result["task_id"]
    assert one.result["task_id"].startswith("TASK-")


@pytest.mark.parametrize("tool", sorted(READS))
def test_reads_record_nothing(registry: ToolRegistry, enterprise: Enterprise, tool: str) -> None:
    receipt = registry.call(tool, READS[tool], idempotency_key="r")
    again = registry.call(tool, READS[tool], idempotency_key="r")
    assert not receipt.replayed and not again.replayed
    assert receipt.result == again.result
    assert enterprise.effects() == []
