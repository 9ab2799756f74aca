"""Recall: the tool's own record of the call made under a key, for the executor to
reconcile a call that committed and then reported a failure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from decisionops.agent.errors import ConflictError, NotFoundError, ToolArgumentsError, ToolCallError
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry, build_reference_registry
from tests.tools.tools_cases import READS, VALID

TASK = "crm.create_task"


@pytest.mark.parametrize("tool", sorted(VALID))
def test_recall_returns_the_first_result(registry: ToolRegistry, enterprise: Enterprise,
                                         tool: str) -> None:
    first = registry.call(tool, VALID[tool], idempotency_key=f"dec-1:{tool}")

    recalled = registry.recall(tool, idempotency_key=f"dec-1:{tool}")

    assert recalled is not None
    assert recalled.replayed
    assert (recalled.tool, recalled.idempotency_key) == (tool, f"dec-1:{tool}")
    assert recalled.result == first.result
    assert len(enterprise.effects()) == 1  # asking changed nothing


def test_recall_of_an_unused_key_is_none(registry: ToolRegistry,
                                         enterprise: Enterprise) -> None:
    registry.call(TASK, VALID[TASK], idempotency_key="used")
    assert registry.recall(TASK, idempotency_key="never-used") is None
    assert len(enterprise.effects()) == 1


@pytest.mark.parametrize("tool", sorted(READS))
def test_a_read_tool_recalls_nothing(registry: ToolRegistry, enterprise: Enterprise,
                                     tool: str) -> None:
    registry.call(tool, READS[tool], idempotency_key="k")
    assert registry.recall(tool, idempotency_key="k") is None
    enterprise.inject_fault(tool, "fail_retryable")  # a read tool is not even asked
    assert registry.recall(tool, idempotency_key="k") is None


def test_recall_of_an_unknown_tool_is_not_found(registry: ToolRegistry) -> None:
    with pytest.raises(NotFoundError):
        registry.recall("finance.refund", idempotency_key="k")


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_recall_refuses_a_bad_key(registry: ToolRegistry, key: str) -> None:
    with pytest.raises(ToolArgumentsError) as caught:
        registry.recall(TASK, idempotency_key=key)
    assert caught.value.field == "idempotency_key"


def test_a_key_used_by_another_tool_conflicts(registry: ToolRegistry) -> None:
    registry.call(TASK, VALID[TASK], idempotency_key="k")
    with pytest.raises(ConflictError) as caught:
        registry.recall("support.open_ticket", idempotency_key="k")
    assert caught.value.details["idempotency_key"] == "k"


def test_a_call_refused_before_its_effect_is_not_recalled(registry: ToolRegistry,
                                                          enterprise: Enterprise) -> None:
    enterprise.inject_fault(TASK, "fail_permanent")
    with pytest.raises(ToolCallError):
        registry.call(TASK, VALID[TASK], idempotency_key="k")
    assert registry.recall(TASK, idempotency_key="k") is None


def test_recall_neither_plays_nor_consumes_faults(registry: ToolRegistry,
                                                  enterprise: Enterprise) -> None:
    registry.call(TASK, VALID[TASK], idempotency_key="k")
    enterprise.inject_fault(TASK, "fail_permanent")
    enterprise.inject_fault(TASK, "commit_then_fail")

    recalled = registry.recall(TASK, idempotency_key="k")

    assert recalled is not None and recalled.replayed
    assert [f.remaining for f in enterprise.faults()] == [1, 1]  # left for the calls


def test_recall_sees_a_call_made_by_another_process(db_path: Path,
                                                    registry: ToolRegistry) -> None:
    with Enterprise(db_path) as elsewhere:
        first = build_reference_registry(elsewhere).call(TASK, VALID[TASK],
                                                         idempotency_key="k")
    recalled = registry.recall(TASK, idempotency_key="k")
    assert recalled is not None and recalled.result == first.result


def test_a_system_that_cannot_be_asked_is_a_retryable_failure(db_path: Path) -> None:
    with Enterprise(db_path) as enterprise:
        build_reference_registry(enterprise).call(TASK, VALID[TASK], idempotency_key="k")
    blocker = sqlite3.connect(db_path, isolation_level=None)
    # An exclusive lock in WAL mode keeps readers out too.
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with Enterprise(db_path, busy_timeout_s=0.05) as impatient:
            registry = build_reference_registry(impatient)
            with pytest.raises(ToolCallError, match="database is locked") as caught:
                registry.recall(TASK, idempotency_key="k")
            assert caught.value.retryable
            blocker.close()
            recalled = registry.recall(TASK, idempotency_key="k")
            assert recalled is not None and recalled.replayed
    finally:
        blocker.close()


def test_the_langchain_tool_recalls_too(registry: ToolRegistry) -> None:
    """The executor path and a LangChain tool share one recall."""
    first = registry.call(TASK, VALID[TASK], idempotency_key="k")
    tool = registry.tool(TASK)
    recalled = tool.recall("k")
    assert recalled is not None and recalled.result == first.result
    assert registry.tool("crm.get_account").recall("k") is None
