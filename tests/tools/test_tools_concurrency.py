"""Threads and processes calling tools at once: no duplicate effect, no oversold stock."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from decisionops.agent.errors import ToolCallError
from decisionops.agent.ports import ToolReceipt
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import build_reference_registry
from tests.tools.tools_cases import VALID

TASK = "crm.create_task"


def test_threads_with_one_key_make_one_effect(enterprise: Enterprise) -> None:
    registry = build_reference_registry(enterprise)
    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(
            lambda _: registry.call(TASK, VALID[TASK], idempotency_key="same"), range(16)))
    assert sum(not r.replayed for r in receipts) == 1
    assert len({r.result["task_id"] for r in receipts}) == 1
    assert len(enterprise.rows("tasks")) == 1


def test_threads_with_their_own_engines_make_one_effect_per_key(db_path: Path,
                                                                enterprise: Enterprise) -> None:
    def worker(index: int) -> list[ToolReceipt]:
        with Enterprise(db_path) as own:
            registry = build_reference_registry(own)
            return [registry.call(TASK, VALID[TASK], idempotency_key=f"key-{(index + n) % 5}")
                    for n in range(5)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        receipts = [r for batch in pool.map(worker, range(4)) for r in batch]
    assert sum(not r.replayed for r in receipts) == 5
    assert len(enterprise.rows("tasks")) == 5
    assert len(enterprise.effects()) == 5


def test_concurrent_transfers_never_oversell(enterprise: Enterprise) -> None:
    registry = build_reference_registry(enterprise)
    (stock,) = enterprise.rows("inventory", sku="SKU-88412", site="DC-LYON")
    quantity = (stock["on_hand"] - stock["reserved"]) // 5
    args = {**VALID["erp.create_stock_transfer"], "quantity": quantity}

    def transfer(index: int) -> bool:
        try:
            registry.call("erp.create_stock_transfer", args, idempotency_key=f"t-{index}")
        except ToolCallError as error:
            assert "insufficient stock" in str(error)
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(transfer, range(12)))
    assert outcomes.count(True) == 5
    (after,) = enterprise.rows("inventory", sku="SKU-88412", site="DC-LYON")
    assert after["reserved"] == stock["reserved"] + 5 * quantity <= after["on_hand"]


def _process_worker(path: str, offset: int, results: multiprocessing.Queue) -> None:
    with Enterprise(path) as own:
        registry = build_reference_registry(own)
        fresh = sum(not registry.call(TASK, VALID[TASK],
                                      idempotency_key=f"key-{(offset + n) % 6}").replayed
                    for n in range(6))
    results.put(fresh)


def test_processes_make_one_effect_per_key(db_path: Path, enterprise: Enterprise) -> None:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_process_worker, args=(str(db_path), i, results))
               for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert sum(results.get(timeout=5) for _ in workers) == 6
    assert len(enterprise.rows("tasks")) == 6
