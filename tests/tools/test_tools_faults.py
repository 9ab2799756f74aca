"""Injected faults: each mode does what it says, counts down, and crosses processes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from decisionops.agent.errors import InvalidInputError, ToolCallError
from decisionops.tools.enterprise import ANY_TOOL, Enterprise, FaultMode
from decisionops.tools.registry import ToolRegistry, build_reference_registry
from tests.tools.tools_cases import VALID

TASK = "crm.create_task"


def test_fail_retryable_raises_before_any_effect(registry: ToolRegistry,
                                                 enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "fail_retryable")
    with pytest.raises(ToolCallError, match="injected fault") as caught:
        registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert caught.value.retryable
    assert enterprise.effects() == [] and enterprise.rows("tasks") == []

    retried = registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert not retried.replayed
    assert len(enterprise.rows("tasks")) == 1


def test_fail_permanent_is_not_retryable(registry: ToolRegistry,
                                         enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, FaultMode.FAIL_PERMANENT)
    with pytest.raises(ToolCallError) as caught:
        registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert caught.value.retryable is False
    assert enterprise.effects() == []


def test_commit_then_fail_keeps_exactly_one_effect(registry: ToolRegistry,
                                                   enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "commit_then_fail")
    with pytest.raises(ToolCallError, match="after commit") as caught:
        registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert caught.value.retryable
    assert len(enterprise.effects()) == 1 and len(enterprise.rows("tasks")) == 1

    retried = registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert retried.replayed
    assert retried.result["task_id"] == enterprise.rows("tasks")[0]["task_id"]
    assert len(enterprise.effects()) == 1 and len(enterprise.rows("tasks")) == 1


def test_commit_then_timeout_keeps_one_effect_that_recall_finds(
        registry: ToolRegistry, enterprise: Enterprise) -> None:
    """A client that gave up at its deadline: the effect committed, the caller was told
    it failed for good, and only the tool's record tells what happened."""
    enterprise.inject_fault(TASK, FaultMode.COMMIT_THEN_TIMEOUT)
    with pytest.raises(ToolCallError, match="timed out waiting for the response") as caught:
        registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert caught.value.retryable is False
    (effect,) = enterprise.effects()
    (task,) = enterprise.rows("tasks")

    recalled = registry.recall(TASK, idempotency_key="k")

    assert recalled is not None and recalled.replayed
    assert recalled.result == effect.result and recalled.result["task_id"] == task["task_id"]
    assert len(enterprise.effects()) == 1 and len(enterprise.rows("tasks")) == 1


def test_every_mode_can_be_injected_by_name(enterprise: Enterprise) -> None:
    for mode in FaultMode:
        enterprise.inject_fault(TASK, mode.value)
    assert [f.mode for f in enterprise.faults()] == list(FaultMode)
    assert FaultMode("commit_then_timeout") is FaultMode.COMMIT_THEN_TIMEOUT


def test_delay_sleeps_then_proceeds(registry: ToolRegistry, enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "delay", delay_s=0.2)
    started = time.monotonic()
    receipt = registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert time.monotonic() - started >= 0.2
    assert not receipt.replayed and len(enterprise.rows("tasks")) == 1


def test_each_call_consumes_one_count(registry: ToolRegistry, enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "fail_retryable", times=2)
    for _ in range(2):
        with pytest.raises(ToolCallError):
            registry.call(TASK, VALID[TASK], idempotency_key="k")
    (fault,) = enterprise.faults()
    assert fault.remaining == 0
    registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert len(enterprise.rows("tasks")) == 1


def test_faults_target_one_tool_or_all(registry: ToolRegistry, enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "fail_permanent")
    registry.call("notify.send", VALID["notify.send"], idempotency_key="n1")  # other tool: fine
    enterprise.inject_fault(ANY_TOOL, "fail_retryable")
    with pytest.raises(ToolCallError):
        registry.call("crm.get_account", {"account_id": "ACC-10001"}, idempotency_key="r")
    assert [f.remaining for f in enterprise.faults()] == [1, 0]
    assert enterprise.clear_faults() == 2
    registry.call(TASK, VALID[TASK], idempotency_key="k")


def test_faults_are_persisted_for_other_processes(db_path: Path,
                                                  enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "fail_retryable")
    # Another Enterprise has its own engine and connections, as another worker would.
    with Enterprise(db_path) as elsewhere, pytest.raises(ToolCallError, match="injected fault"):
        build_reference_registry(elsewhere).call(TASK, VALID[TASK], idempotency_key="k")
    assert enterprise.faults()[0].remaining == 0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"mode": "explode"}, "mode"), ({"mode": "delay", "times": 0}, "times"),
    ({"mode": "delay", "delay_s": -1}, "delay_s"),
])
def test_bad_fault_is_refused(enterprise: Enterprise, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        enterprise.inject_fault(TASK, **kwargs)
    assert caught.value.field == field
    assert enterprise.faults() == []


def test_a_locked_database_is_a_retryable_failure(db_path: Path) -> None:
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with Enterprise(db_path, busy_timeout_s=0.05) as impatient:
            registry = build_reference_registry(impatient)
            with pytest.raises(ToolCallError, match="database is locked") as caught:
                registry.call(TASK, VALID[TASK], idempotency_key="k")
            assert caught.value.retryable
            blocker.execute("ROLLBACK")
            assert not registry.call(TASK, VALID[TASK], idempotency_key="k").replayed
    finally:
        blocker.close()
