"""Which thread a step's tool call runs in. Calls to a system in another process (an MCP
server, a plug-in's HTTP API) overlap within a wave: each waits on the network. Calls to
the bundled reference enterprise run in the leg's own thread, one after another: they
wait on nothing outside this process (its SQLite file takes one writer at a time), so a
hand-off to a pool thread would only add its cost to every call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from decisionops.agent.models import Approve, DecisionStatus
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from tests.graphs.conftest import churn, start
from tests.support import answer, approver, pending


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(home=tmp_path / "home", tool_backoff_seconds=0.01)
    with Runtime(settings, actor="test-worker") as runtime:
        runtime.enterprise.seed()
        for policy in runtime.policies.functions.values():
            for name in policy.approvers:
                approver(runtime, name)
        yield runtime


def _approve_all(rt: Runtime, decision_id: str) -> None:
    """Every function approves; the last answer's worker runs the steps in this thread."""
    for function, request in pending(rt, decision_id).items():
        answer(rt, request["id"], Approve(), approver_name=rt.policies.get(function).approvers[0])


def _calls(rt: Runtime, monkeypatch: pytest.MonkeyPatch, *, pause: float = 0.0
           ) -> tuple[list[tuple[str, str]], list[int]]:
    """Record each step's call (its tool and thread), and the most in flight at once (the
    previews approvers were shown, read again before the steps run, are not counted)."""
    seen: list[tuple[str, str]] = []
    most = [0]
    now = [0]
    lock = threading.Lock()
    call = rt.tools.call

    def recorded(name: str, arguments: Any, *, idempotency_key: str) -> Any:
        if not rt.tools.spec(name).side_effects:
            return call(name, arguments, idempotency_key=idempotency_key)
        with lock:
            seen.append((name, threading.current_thread().name))
            now[0] += 1
            most[0] = max(most[0], now[0])
        try:
            time.sleep(pause)
            return call(name, arguments, idempotency_key=idempotency_key)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(rt.tools, "call", recorded)
    return seen, most


def test_reference_enterprise_calls_run_in_the_legs_thread(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    assert all(spec.in_process for spec in rt.tools.specs())
    first = start(rt, churn())
    seen, most = _calls(rt, monkeypatch)
    _approve_all(rt, first.decision_id)
    decision = rt.store.decisions.get(first.decision_id)
    assert decision.status is DecisionStatus.COMPLETED
    assert len(seen) == 4  # the churn plan's four steps, in two waves of two
    assert {thread for _, thread in seen} == {threading.current_thread().name}
    assert most[0] == 1


def test_calls_to_another_process_overlap_within_a_wave(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    first = start(rt, churn())
    specs = {spec.name: spec.model_copy(update={"in_process": False})
             for spec in rt.tools.specs()}
    monkeypatch.setattr(rt.tools, "spec", lambda name: specs[name])
    seen, most = _calls(rt, monkeypatch, pause=0.3)
    _approve_all(rt, first.decision_id)
    assert rt.store.decisions.get(first.decision_id).status is DecisionStatus.COMPLETED
    assert len(seen) == 4
    # Each wave's two calls were in flight together, one of them in a pool thread.
    assert most[0] == 2
    assert len({thread for _, thread in seen}) >= 2


def test_a_leg_runs_its_graph_tasks_without_a_thread_each(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A churn plan's first leg routes three functions (three approval tasks in one
    LangGraph step) and saves its checkpoint: the tasks run one after another, each a
    few store reads, so the leg starts one thread (LangGraph's saver), not one a task."""
    started: list[str] = []
    spawn = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        spawn(thread)

    rt.engine  # noqa: B018 - built first: its heartbeat thread is not the leg's
    monkeypatch.setattr(threading.Thread, "start", counted)
    result = start(rt, churn())
    assert result.status == "awaiting_approval"
    assert len(pending(rt, result.decision_id)) == 2
    assert len([name for name in started if not name.startswith("lease-heartbeat")]) <= 1, started
