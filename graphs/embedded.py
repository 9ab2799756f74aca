"""The embedded runtime the LangGraph server's graph and auth share (``langgraph dev``).

One per process, built on first use from ``Settings()`` (the CLI's data folder). Building
it opens databases: call ``embedded()`` off the event loop (``asyncio.to_thread``). Lives
in its own module because the server loads ``graphs/studio.py`` by file path, which
would give that module a second copy of any state it held.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["embedded"]

_LOCK = threading.Lock()
_RUNTIME: list[Any] = []


def embedded() -> Any:
    """The embedded runtime (an ``agent.runtime.Runtime``), built once; blocking."""
    with _LOCK:
        if not _RUNTIME:
            from decisionops.agent.runtime import Runtime  # the composition root, only when asked
            from decisionops.agent.settings import Settings

            _RUNTIME.append(Runtime(Settings(), actor="studio"))
        return _RUNTIME[0]
