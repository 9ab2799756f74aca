"""The continuous loop behind ``decisionops run``: one worker in this process, or N
worker processes supervised by it. SQLite allows one writer, so it runs one worker and
refuses a second loop on the same data folder; PostgreSQL takes any number."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from agent.cli._common import console, err_console, fail, settings
from agent.settings import Settings

__all__ = ["run_loop"]


@contextmanager
def _single_loop(home: Path) -> Iterator[None]:
    """Refuse a second loop on the same embedded data folder."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "worker.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise fail(f"a loop already runs on {home} (pid {holder}); SQLite allows one writer. "
                   "Stop it, or use PostgreSQL (DECISIONOPS_DATABASE_URL) for several workers"
                   ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _worker_main(index: int, poll_seconds: float, as_json: bool) -> None:
    from agent.housekeeping import default_housekeeping
    from agent.runtime import Runtime
    from agent.worker import TickReport, Worker

    conf = Settings()
    with Runtime(conf, actor=f"worker-{index}:{os.uname().nodename}:{os.getpid()}") as rt:
        worker = Worker(rt, poll_seconds=poll_seconds, housekeeping=default_housekeeping(conf))
        worker.install_signal_handlers()
        if conf.metrics_port:
            from prometheus_client import start_http_server

            # Worker i serves on metrics_port + i (127.0.0.1; put a scraper next to it).
            start_http_server(conf.metrics_port + index, addr="127.0.0.1",
                              registry=rt.metrics.registry)

        def show(report: TickReport) -> None:
            if not report.did_work and not report.errors:
                return
            if as_json:
                sys.stdout.write(json.dumps({"worker": index, **report.summary()},
                                            default=str) + "\n")
                sys.stdout.flush()
                return
            parts = [f"{k} {getattr(report, k)}" for k in
                     ("recovered", "triaged", "started", "resumed", "busy") if getattr(report, k)]
            parts += [f"{k} {v}" for k, v in report.housekeeping.items() if v]
            console.print(f"[dim]worker {index}[/] " + ", ".join(parts), highlight=False)
            for error in report.errors:
                err_console.print(f"[dim]worker {index}[/] [yellow]![/] {error}", highlight=False)

        worker.run(on_tick=show)


def run_loop(*, workers: int, poll_seconds: float, as_json: bool) -> None:
    conf = settings()
    postgres = conf.resolved_database_url.startswith("postgresql")
    if workers > 1 and not postgres:
        raise fail(f"--workers {workers}: SQLite allows one writer; several workers need "
                   "PostgreSQL (set DECISIONOPS_DATABASE_URL=postgresql+psycopg://…)")
    if not postgres:
        with _single_loop(conf.home):
            err_console.print(f"loop running on {conf.home} (SQLite, one worker); Ctrl-C stops")
            _worker_main(0, poll_seconds, as_json)
        return
    if workers == 1:
        _worker_main(0, poll_seconds, as_json)
        return
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=_worker_main, args=(i, poll_seconds, as_json),
                            name=f"decisionops-worker-{i}") for i in range(workers)]
    for child in children:
        child.start()
    err_console.print(f"{workers} workers running (pids "
                      f"{', '.join(str(c.pid) for c in children)}); SIGTERM/Ctrl-C stops them")

    def _forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
    failed = [c.name for c in children if c.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise fail(f"worker(s) {', '.join(failed)} exited with an error", 1)
