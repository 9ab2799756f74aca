"""Named crash points for reliability tests.

``DECISIONOPS_CRASH_AT=<point>`` makes the process exit abruptly (``os._exit``, no
cleanup, like SIGKILL) the first time it reaches that point; the fault suite uses it to
prove that a re-run after a crash repeats no effect. Unset in normal operation: a
no-op then.
"""

from __future__ import annotations

import os

__all__ = ["POINTS", "crash_point"]

POINTS = frozenset({
    "after_route",           # route committed the plan, its requests and status; no checkpoint
    "after_preview_changed", # execute recorded that the world changed (routed again); no checkpoint
    "before_tool_call",      # a wave's write-ahead records committed; no tool called yet
    "after_tool_call",       # a tool acted; its result not recorded
    "before_record",         # the last calls acted; the terminal state not written
    "before_mark_applied",   # a leg consumed answers and was checkpointed; not marked applied
    "after_model_reply",     # the model answered and the call is recorded; the draft not stored
})


def crash_point(name: str) -> None:
    if name not in POINTS:  # pragma: no cover - programming error
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get("DECISIONOPS_CRASH_AT") == name:
        os._exit(86)
