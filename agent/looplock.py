"""One loop per embedded data folder: ``decisionops run`` and ``decisionops serve``
(its worker thread) on the same SQLite folder never both run the loop.

The rule lives here and both commands use it. On SQLite the loop holds an exclusive
``flock`` on ``<home>/worker.lock`` for as long as it runs; a second loop fails at once
with ``LoopAlreadyRunning`` naming the holder (pid and command, written in the file).
The kernel drops the lock when its process ends, however it ends, so a lock file left by
a dead process blocks nothing. On PostgreSQL any number of loops may run (they claim
work with leases): there is no lock.

A lock is per open file, so one process must not take it twice (``serve`` checks with
``probe`` before it starts, and its app takes the lock for the worker thread's life).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from decisionops.agent.errors import LoopAlreadyRunning

__all__ = ["LOCK_FILE", "LoopLock"]

LOCK_FILE = "worker.lock"


class LoopLock:
    """The loop's claim on a data folder: ``with LoopLock(settings, "run"):`` or
    ``acquire()`` / ``release()``. A no-op unless the store is SQLite."""

    def __init__(self, settings: Any, owner: str) -> None:
        self.exclusive = not settings.resolved_database_url.startswith("postgresql")
        self.home = Path(settings.home)
        self.path = self.home / LOCK_FILE
        self.owner = owner
        self._handle: IO[str] | None = None

    def acquire(self, *, sign: bool = True) -> None:
        """Take the lock or raise ``LoopAlreadyRunning``; nothing else changes. ``sign``:
        write this process's pid and command in the file (for the next one's message)."""
        if not self.exclusive or self._handle is not None:
            return
        self.home.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise LoopAlreadyRunning(
                f"a loop already runs on {self.home} ({holder}); SQLite allows one writer, so "
                "one of `decisionops run` and `decisionops serve` runs the loop: stop it, use "
                "`decisionops serve --no-worker` beside `run`, or PostgreSQL "
                "(DECISIONOPS_DATABASE_URL) for several loops", holder=holder) from None
        if sign:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}, decisionops {self.owner}")
            handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def probe(self) -> None:
        """Raise ``LoopAlreadyRunning`` if another loop holds the folder now (the lock is
        not kept: the caller's loop takes it when it starts)."""
        self.acquire(sign=False)
        self.release()

    def __enter__(self) -> LoopLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
