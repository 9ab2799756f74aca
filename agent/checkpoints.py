"""LangGraph checkpointers for the decision graph: SQLite (embedded default) or
PostgreSQL (scale-out), chosen by URL, and the fencing wrapper every worker uses.

SQLite: one connection shared by the process (SqliteSaver serializes on its own lock).
PostgreSQL: a psycopg pool with the settings PostgresSaver requires (autocommit,
dict rows, no server-side prepares so it works behind PgBouncer too); ``setup()`` runs
under an advisory lock so several workers starting at once do not race its migrations.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from sqlalchemy.engine import make_url

from decisionops.agent.errors import ConfigError, LeaseLost

__all__ = ["FencedCheckpointer", "is_postgres_url", "open_checkpointer", "psycopg_conninfo"]

_SETUP_LOCK = 7_243_012


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:"))


def psycopg_conninfo(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (``postgresql+psycopg://`` → ``postgresql://``)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def open_checkpointer(url: str, stack: ExitStack, *, pool_size: int = 4) -> BaseCheckpointSaver:
    if is_postgres_url(url):
        return _postgres(url, stack, pool_size)
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigError(f"checkpoint_url: unsupported {url.split('://')[0]!r}; use a SQLite "
                          "path or a postgresql+psycopg:// URL", field="checkpoint_url")
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    # WAL with synchronous=NORMAL, like the store's intermediate writes: a checkpoint
    # commit survives any crash of our processes and is never half-written; only a
    # power loss can drop the newest ones, and a lost checkpoint costs a re-run of the
    # leg from the store (the system of record: stored plans and routing are reused,
    # answers re-read, tool calls repeated under their idempotency keys). FULL would
    # sync the disk on every leg's checkpoint and writes (six per decision here).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    stack.callback(conn.close)
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def _postgres(url: str, stack: ExitStack, pool_size: int) -> BaseCheckpointSaver:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    from decisionops.agent.store._engine import rested

    # A connection is checked (a round trip) before use only if it rested in the pool
    # (``rested``, the store pool's rule): a leg takes one several times in a row.
    back_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = \
        weakref.WeakKeyDictionary()

    def check(conn: psycopg.Connection[Any]) -> None:
        if rested(back_at.get(conn)):
            ConnectionPool.check_connection(conn)

    def returned(conn: psycopg.Connection[Any]) -> None:
        back_at[conn] = time.monotonic()

    conninfo = psycopg_conninfo(url)
    pool = ConnectionPool(conninfo, min_size=1, max_size=pool_size, open=True,
                          kwargs={"autocommit": True, "prepare_threshold": 0,
                                  "row_factory": dict_row},
                          check=check, reset=returned)
    stack.callback(pool.close)
    saver = PostgresSaver(pool)
    # PostgresSaver holds one lock around every operation, even over a pool
    # (langgraph#7259): a worker's planning threads wrote their checkpoints one at a time.
    # Each operation takes its own connection from the pool, so as many may run at once
    # as the pool has connections.
    saver.lock = threading.BoundedSemaphore(pool_size)  # type: ignore[assignment]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Poll rather than block in pg_advisory_lock: the holder's setup runs CREATE INDEX
        # CONCURRENTLY, which waits for every open transaction, a blocked lock call too.
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (_SETUP_LOCK,)).fetchone()[0]:
            time.sleep(0.2)
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    return saver


class FencedCheckpointer(BaseCheckpointSaver):
    """Wraps a checkpointer so a worker that lost a decision's lease cannot write its
    checkpoints any more.

    The engine registers the fencing token it holds before invoking a thread; every
    ``put``/``put_writes`` for that thread first checks the token is still the decision's
    current one. Without this, a worker paused past its lease (GC, SIGSTOP, a slow disk)
    would, on waking, save its stale progress as the thread's newest checkpoint. Once the
    leg has stored the decision's terminal state under its token, the engine ``forget``s
    the thread: no worker acts on a finished decision again, so its last checkpoint is
    written without a further check.

    A checkpoint and its pending writes go out together (when a leg stops, LangGraph
    saves the checkpoint and then each task's writes to it): the token is read once for
    them, by the first of them, not once each.
    """

    def __init__(self, inner: BaseCheckpointSaver, fence_of: Callable[[str], int | None]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self._fence_of = fence_of
        self._expected: dict[str, int] = {}
        self._checked: dict[str, tuple[int, str]] = {}
        """Thread → (token, checkpoint id) last found current for that checkpoint."""
        self._lock = threading.Lock()

    # -- fencing

    def expect(self, thread_id: str, fence: int) -> None:
        with self._lock:
            self._expected[thread_id] = fence
            self._checked.pop(thread_id, None)

    def forget(self, thread_id: str) -> None:
        with self._lock:
            self._expected.pop(thread_id, None)
            self._checked.pop(thread_id, None)

    def _check(self, config: RunnableConfig, checkpoint_id: str | None) -> None:
        thread_id = str(config["configurable"]["thread_id"])
        with self._lock:
            expected = self._expected.get(thread_id)
            if expected is None or (checkpoint_id is not None and
                                    self._checked.get(thread_id) == (expected, checkpoint_id)):
                return
        current = self._fence_of(thread_id)
        if current != expected:
            raise LeaseLost(f"lost the lease on {thread_id} (fence {expected}, now {current}); "
                            "its checkpoint was not written")
        if checkpoint_id is not None:
            with self._lock:
                if self._expected.get(thread_id) == expected:
                    self._checked[thread_id] = (expected, checkpoint_id)

    # -- delegation

    @property
    def config_specs(self) -> list:  # type: ignore[override]
        return self.inner.config_specs

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        return self.inner.list(config, filter=filter, before=before, limit=limit)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        self._check(config, checkpoint["id"])
        return self.inner.put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        self._check(config, config["configurable"].get("checkpoint_id"))
        self.inner.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    def get_next_version(self, current: Any, channel: Any) -> Any:
        return self.inner.get_next_version(current, channel)
