"""Whole lines on the supervisor's stdout: each worker child writes to a pipe of its own,
and the supervisor passes its output on one complete line at a time, its own event
lines between them.

Why: with one shared stdout, lines from several processes interleave byte-wise where a
line is written in more than one piece (a ``--json`` tick line of a busy worker runs to
several KB, past the 4 KB a pipe writes at once, and a consumer slower than the writers
splits it further; an unflushed buffer spills at any byte). Two lines glued together
are one line no reader can parse, and the event in it is lost to a reader of JSON lines.

A child's last line cut short by its death (no newline before it ended) is not passed
on: it is said on stderr instead, with its length. Once the reader of stdout is gone
(a closed pipe), the children's output is still read, and dropped, so no child blocks
on a pipe nobody empties; that too is said on stderr, once. What the children write to
stderr is not relayed (lines for a person, read as they come).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import BinaryIO

__all__ = ["LineRelay"]

_CHUNK = 65_536


class LineRelay:
    def __init__(self, out: BinaryIO | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        """``out``: where the lines go (default: this process's stdout); ``warn``: how a
        child's cut-short line is said (default: a line on stderr)."""
        self._out = out if out is not None else sys.stdout.buffer
        self._warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False
        """The reader of ``out`` is gone: lines are dropped."""

    def line(self, text: str) -> None:
        """Write one line of this process's own (``text`` without its newline)."""
        self._write(text.encode() + b"\n")

    def follow(self, reader: Connection, name: str) -> None:
        """Pass on what a child writes to the write end of ``reader``'s pipe, a whole line
        at a time, until every copy of that end is closed (the child exited). Call it
        once the child has started and this process closed its own copy of the write
        end, or the end never comes."""
        thread = threading.Thread(target=self._pump, args=(reader, name), daemon=True,
                                  name=f"relay {name}")
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def close(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` s in all) for the children's last lines to be passed on."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _pump(self, reader: Connection, name: str) -> None:
        pending = b""
        fd = reader.fileno()
        try:
            while chunk := os.read(fd, _CHUNK):
                pending += chunk
                cut = pending.rfind(b"\n") + 1
                if cut:
                    self._write(pending[:cut])
                    pending = pending[cut:]
        except OSError:  # the child's pipe broke under us: what was whole went out
            pass
        finally:
            reader.close()
        if pending:
            self._warn(f"{name} ended in the middle of a line: its last {len(pending)} bytes "
                       "were not passed on")

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._out.write(data)
                self._out.flush()
            except (BrokenPipeError, ValueError):  # a closed pipe, or a closed file
                self._closed = True
                self._warn("stdout is closed: the workers' output is dropped from now on")
