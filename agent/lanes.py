"""A worker's planning lanes: which of the legs it has in hand still plan.

``planner_concurrency`` bounds the model calls a worker has out. A leg holds its lane
while it plans; once its draft is in (the plan node is past the planner), the rest of
the leg (checks, routing: reads and CPU that wait for the interpreter while other legs
hold it) runs outside the lane, and the worker may claim another decision for it. A
lane is the leg's own (a context variable the graph's nodes inherit, on whatever thread
LangGraph runs them), so the plan node tells it without knowing who runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["Lane", "in_lane", "planned"]

T = TypeVar("T")


class Lane:
    def __init__(self, on_planned: Callable[[], None] = lambda: None) -> None:
        self._on_planned = on_planned
        self._planned = threading.Event()

    @property
    def planning(self) -> bool:
        """Whether the leg may still call the planner (it holds its lane)."""
        return not self._planned.is_set()

    def planned(self) -> None:
        if not self._planned.is_set():
            self._planned.set()
            self._on_planned()


_LANE: ContextVar[Lane | None] = ContextVar("decisionops_lane", default=None)


def in_lane(lane: Lane, action: Callable[[], T]) -> T:
    """Run ``action`` (a leg) in ``lane``; the lane is let go when it returns, planned
    or not."""
    token = _LANE.set(lane)
    try:
        return action()
    finally:
        _LANE.reset(token)
        lane.planned()


def planned() -> None:
    """The current leg has its draft: its lane is free for another decision. A second
    draft in the same leg (the world changed under the plan) still waits for a call
    slot of the model client, which bounds the calls out whatever the lanes say.
    Nothing outside a worker's lane."""
    lane = _LANE.get()
    if lane is not None:
        lane.planned()
