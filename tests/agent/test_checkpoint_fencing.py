"""``FencedCheckpointer``: a worker that lost a decision's lease writes no checkpoint of
it; one that holds it reads the fencing token once per checkpoint it saves (the
checkpoint and its tasks' pending writes go out together), not once per write."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from decisionops.agent.checkpoints import FencedCheckpointer
from decisionops.agent.errors import LeaseLost


class Fences:
    def __init__(self) -> None:
        self.current: dict[str, int] = {}
        self.reads = 0

    def __call__(self, thread_id: str) -> int | None:
        self.reads += 1
        return self.current.get(thread_id)


def _config(thread: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    configurable = {"thread_id": thread, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _save(saver: FencedCheckpointer, thread: str) -> str:
    """A leg's exit: the checkpoint, then two tasks' writes to it; its id."""
    checkpoint = empty_checkpoint()
    saved = saver.put(_config(thread), checkpoint, {"source": "loop", "step": 1}, {})
    for task in ("t1", "t2"):
        saver.put_writes(_config(thread, saved["configurable"]["checkpoint_id"]),
                         [("answers", {task: 1})], task)
    return checkpoint["id"]


def test_one_token_read_per_checkpoint_and_its_writes() -> None:
    fences = Fences()
    saver = FencedCheckpointer(InMemorySaver(), fences)
    fences.current["dec_1"] = 3
    saver.expect("dec_1", 3)
    first = _save(saver, "dec_1")
    assert fences.reads == 1
    second = _save(saver, "dec_1")  # the next leg's checkpoint is read for again
    assert fences.reads == 2 and second != first
    # a write to an older checkpoint is checked on its own
    saver.put_writes(_config("dec_1", first), [("answers", {"late": 1})], "t3")
    assert fences.reads == 3


def test_a_worker_that_lost_the_lease_writes_nothing() -> None:
    fences = Fences()
    inner = InMemorySaver()
    saver = FencedCheckpointer(inner, fences)
    fences.current["dec_1"] = 3
    saver.expect("dec_1", 3)
    kept = _save(saver, "dec_1")
    fences.current["dec_1"] = 4  # another worker took the lease
    with pytest.raises(LeaseLost, match="fence 3, now 4"):
        _save(saver, "dec_1")
    # nor does a write to the checkpoint it saved while it held the lease, once the
    # engine took the leg up again under its old token
    saver.expect("dec_1", 3)
    with pytest.raises(LeaseLost):
        saver.put_writes(_config("dec_1", kept), [("answers", {"late": 1})], "t9")
    newest = inner.get_tuple(_config("dec_1"))
    assert newest is not None and newest.checkpoint["id"] == kept
    assert [w[0] for w in newest.pending_writes] == ["t1", "t2"]
    # a finished decision's last checkpoint is written without a check
    saver.forget("dec_1")
    reads = fences.reads
    _save(saver, "dec_1")
    assert fences.reads == reads
