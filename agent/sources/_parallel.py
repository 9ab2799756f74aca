"""A file streamed as ``PreparedChunk``s, mapped and prepared in worker processes when
it is large: what ``decisionops ingest`` stores.

Reading stays in the calling process, in order (row numbers, the ``max_rows`` bound and
the chunks' order are the serial read's); each chunk of rows as read goes to a worker
that maps it onto predictions (``ChunkMapper``, the same code as a serial read) and
makes them the rows the store keeps (``prepare``: kind aliases, JSON, row hash). Those
are the costly steps per row, and they need nothing but the chunk. The chunks come
back in the order they were read, at most two per worker in flight, so memory stays
bounded whatever the file's size. A worker imports what it runs and no more (not the
caller's main script), and there are no more of them by default than the reading
process can keep busy (``MOST_JOBS``) on the CPUs it may use. A small file, a
model-server body, or ``jobs=1`` is read, mapped and prepared here; the chunks are the
same either way.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
import time
import types
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from decisionops.agent.errors import RuntimeFailure
from decisionops.agent.sources._batch import SourceLimits
from decisionops.agent.sources._files import ChunkMapper, RawChunk, open_file
from decisionops.agent.sources._mapping import FieldMapping
from decisionops.agent.sources._open import ServingJoin, iter_input, resolve_format
from decisionops.agent.sources._prepared import PreparedChunk

__all__ = ["MOST_JOBS", "PARALLEL_BYTES", "PARALLEL_ROWS", "default_jobs", "iter_prepared"]

PARALLEL_BYTES = 16 * 1024 * 1024
PARALLEL_ROWS = 100_000
"""A Parquet file of this many rows or more is read with worker processes (about the
rows of ``PARALLEL_BYTES`` of CSV)."""
"""Files from this size up are mapped in worker processes by default (below it the
workers' start-up costs about what they would save)."""
MOST_JOBS = 4
"""Worker processes by default at most. The process that reads and stores spends about
27 µs of its own on a row (reading it, handing it over, taking the result back,
inserting it) to a worker's 43 µs (mapping, validating, serializing, hashing), so two
workers keep it busy and more wait on it, each holding its ~40 MB: ``--jobs`` asks for
more."""
_AHEAD = 2
"""Chunks in flight per worker."""
_WATCH_SECONDS = 0.5
"""How often a worker looks whether the process it works for is still there."""

_worker: tuple[ChunkMapper, Mapping[str, str]] | None = None


def default_jobs() -> int:
    """Worker processes for a large file: one per CPU this process may use, at most
    ``MOST_JOBS``."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count() or 1
    return max(1, min(_usable_cpus(affinity), MOST_JOBS))


def _usable_cpus(affinity: int, cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity, bounded by the CPU quota of its
    cgroup as a container sees it (``--cpus 2`` on a 16-CPU host leaves the affinity at
    16), rounded up."""
    quota = _cpu_quota(cgroup)
    return affinity if quota is None else max(1, min(affinity, math.ceil(quota)))


def _cpu_quota(cgroup: Path) -> float | None:
    """CPUs' worth of time per period the cgroup allows (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``); None: no quota, or none found."""
    try:
        quota, period = [*(cgroup / "cpu.max").read_text().split(), "100000"][:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota_us = int((cgroup / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((cgroup / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def iter_prepared(path: str | os.PathLike[str], fmt: str = "auto",
                  mapping: FieldMapping | None = None, *, join: ServingJoin | None = None,
                  limits: SourceLimits | None = None, batch_rows: int | None = 5000,
                  aliases: Mapping[str, str] | None = None, jobs: int | None = None
                  ) -> Iterator[PreparedChunk]:
    """``iter_input``'s chunks as ``PreparedChunk``s (``aliases``: ``kind_aliases``).
    ``jobs``: worker processes; ``None`` picks ``default_jobs()`` for a CSV or JSONL
    file of ``PARALLEL_BYTES`` or more or a Parquet file of ``PARALLEL_ROWS`` rows or
    more, and 1 otherwise. Whole-input problems
    raise ``InvalidInputError`` here, before the first chunk."""
    limits = limits or SourceLimits()
    aliases = dict(aliases or {})
    chosen = resolve_format(path, fmt, limits)
    if chosen == "serving" or (join is not None and (join.inputs is not None
                                                     or join.entity_ids is not None)):
        chunks = iter_input(path, fmt, mapping, join=join, limits=limits, batch_rows=batch_rows)
        return (PreparedChunk.of(chunk, aliases) for chunk in chunks)
    mapper, raw = open_file(path, chosen, mapping, limits=limits,  # type: ignore[arg-type]
                            batch_rows=batch_rows)
    if jobs is None:
        jobs = default_jobs() if _big(path, chosen) else 1
    if jobs <= 1:
        return (PreparedChunk.of(mapper(chunk), aliases) for chunk in raw)
    return _pooled(mapper, raw, aliases, jobs)


def _big(path: str | os.PathLike[str], chosen: str) -> bool:
    """Worth the worker processes: ``PARALLEL_BYTES`` of text, or as many rows in a
    Parquet file (compressed, its bytes say little: 1M rows can be 14 MB), read from its
    footer without reading the rows."""
    if chosen == "parquet":
        import pyarrow.parquet as pq

        return bool(pq.read_metadata(path).num_rows >= PARALLEL_ROWS)
    return Path(path).stat().st_size >= PARALLEL_BYTES


def _pooled(mapper: ChunkMapper, raw: Iterator[RawChunk], aliases: dict[str, str],
            jobs: int) -> Iterator[PreparedChunk]:
    # forkserver: the workers start from a clean process that imported this module once,
    # not from a copy of the caller (its threads, locks and open database connections).
    context = _LeanContext()
    context.set_forkserver_preload([__name__])
    done = 0
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start,
                             initargs=(mapper, aliases, os.getpid())) as pool:
        pending: deque[Future[PreparedChunk]] = deque()
        try:
            for chunk in raw:
                pending.append(pool.submit(_prepare, chunk))
                if len(pending) >= _AHEAD * jobs:
                    yield pending.popleft().result()
                    done += 1
            while pending:
                yield pending.popleft().result()
                done += 1
        except BrokenProcessPool:
            raise RuntimeFailure(
                f"a worker process validating rows ended unexpectedly (killed, or out of "
                f"memory) after {done} batch(es) were handed on; those are stored: ingest "
                "the file again (stored rows are skipped), with fewer --jobs if memory is "
                "short") from None
        finally:
            for future in pending:
                future.cancel()


if sys.platform != "win32":  # as multiprocessing.context defines the forkserver's

    class _LeanProcess(multiprocessing.context.ForkServerProcess):
        """A forkserver process that does not run the caller's main module first."""

        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            with _main_module_hidden():
                return multiprocessing.context.ForkServerProcess._Popen(process_obj)

    class _LeanContext(multiprocessing.context.ForkServerContext):
        Process = _LeanProcess


_LAUNCHING = threading.Lock()


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """While a worker is launched, ``__main__`` is an empty module, so the worker does not
    import the caller's main module before it starts. multiprocessing would: a worker
    runs the parent's main script again (for ``decisionops``, the console script, which
    imports the whole CLI: SQLAlchemy, psycopg, Rich, the runtime), ~45 MB a worker for
    nothing it uses: what it runs (this module, the mapper) is imported by name. The
    lock keeps two launches from restoring each other's stand-in."""
    with _LAUNCHING:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def _start(mapper: ChunkMapper, aliases: dict[str, str], owner: int) -> None:
    global _worker
    _worker = (mapper, aliases)
    threading.Thread(target=_outlive_not, args=(owner,), daemon=True,
                     name="owner watch").start()


def _outlive_not(owner: int) -> None:
    """End this worker once the process that reads the file is gone (killed, say):
    nobody will ask it for work again, and it would keep its memory to itself."""
    while True:
        time.sleep(_WATCH_SECONDS)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # alive, under another user (a reused pid at worst)
            pass


def _prepare(chunk: RawChunk) -> PreparedChunk:
    assert _worker is not None, "the worker was started without its mapper"
    mapper, aliases = _worker
    return PreparedChunk.of(mapper(chunk), aliases)
