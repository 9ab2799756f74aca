"""A worker's planning lanes: which of the legs it has in hand are planning.

``planner_concurrency`` is how many decisions a worker plans at once. A leg is planning
from its start until its draft is in (the plan node is past the planner); the rest of
the leg (checks, routing: reads and CPU that wait for the interpreter while other legs
hold it) runs outside its lane, and the worker may claim another decision for it. A
leg that drafts again (the world changed under an approved plan) plans again, in its
lane, for that draft. A lane is the leg's own (a context variable the graph's nodes
inherit, on whatever thread LangGraph runs them), so the plan node tells it without
knowing who runs it; outside a worker's pool (the loop's own thread, a command) there
is no lane, and nothing to tell.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["Lane", "drafting", "in_lane"]

T = TypeVar("T")


class Lane:
    def __init__(self, on_free: Callable[[], None] = lambda: None) -> None:
        self._on_free = on_free
        self._lock = threading.Lock()
        self._planning = True

    @property
    def planning(self) -> bool:
        """Whether the leg counts against the worker's ``planner_concurrency``."""
        return self._planning

    def plan(self) -> None:
        with self._lock:
            self._planning = True

    def free(self) -> None:
        with self._lock:
            was, self._planning = self._planning, False
        if was:
            self._on_free()


_LANE: ContextVar[Lane | None] = ContextVar("decisionops_lane", default=None)


def in_lane(lane: Lane, action: Callable[[], T]) -> T:
    """Run ``action`` (a leg) in ``lane``, planning until it says otherwise; the lane is
    free when the leg ends, however it ends."""
    token = _LANE.set(lane)
    try:
        return action()
    finally:
        _LANE.reset(token)
        lane.free()


@contextmanager
def drafting() -> Iterator[None]:
    """Around the planner's draft: the leg is planning while it runs, and its lane is
    free once the draft is in (or failed)."""
    lane = _LANE.get()
    if lane is None:
        yield
        return
    lane.plan()
    try:
        yield
    finally:
        lane.free()
