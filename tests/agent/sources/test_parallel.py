"""``iter_prepared``: a file's rows mapped and prepared in worker processes give the chunks
one process gives (the CLI's equivalence test covers whole commands); a worker that
dies is an error that says what was handed on, not a hang or a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from decisionops.agent.errors import RuntimeFailure
from decisionops.agent.sources import PreparedChunk, SourceBatch
from decisionops.agent.sources._parallel import _pooled, iter_prepared


def _chunks(path: Path, jobs: int, **kw: object) -> list[PreparedChunk]:
    return list(iter_prepared(path, batch_rows=4, jobs=jobs, **kw))  # type: ignore[arg-type]


def test_parquet_in_worker_processes_is_parquet_in_one(tmp_path: Path) -> None:
    rows = 15
    table = pa.table({
        "id": [f"pq-{i}" if i != 9 else "pq-2" for i in range(rows)],
        "model": ["m"] * rows, "kind": ["wear"] * rows, "entity_type": ["asset"] * rows,
        "entity_id": [f"A-{i}" for i in range(rows)],
        "score": [i / 10 for i in range(rows)],  # 1.0 and up are rejected
        "observed_at": pa.array([1_763_625_600_000_000] * rows, pa.timestamp("us", tz="UTC")),
        "features": [{"site": "DC-1", "n": i} for i in range(rows)]})
    path = tmp_path / "p.parquet"
    pq.write_table(table, path, row_group_size=6)
    aliases = {"wear": "failure"}
    one, three = _chunks(path, 1, aliases=aliases), _chunks(path, 3, aliases=aliases)
    assert one == three
    assert [c.rows_read for c in one] == [4, 4, 4, 3]
    rows_out = [r for c in one for r in c.rows]
    assert {r.kind for r in rows_out} == {"failure"}
    # 15, less the scores over 1 (rows 12-15); pq-2 again is in another chunk (the
    # store, not the reader, finds it already stored)
    assert len(rows_out) == 11
    assert [r.id for r in rows_out].count("pq-2") == 2
    assert [e.row for c in one for e in c.errors] == [12, 13, 14, 15]


class _DiesAtRowEleven:
    """A mapper whose worker process ends as the chunk holding row 11 reaches it."""

    def __call__(self, chunk: list[tuple[int, int | None, object]]) -> SourceBatch:
        if any(row == 11 for row, _, _ in chunk):
            os._exit(3)
        return SourceBatch(predictions=[], errors=[], rows_read=len(chunk))


def test_a_worker_that_dies_is_an_error_naming_what_was_handed_on() -> None:
    raw = iter([[(row, row, None) for row in range(start, start + 5)]
                for start in (1, 6, 11, 16)])
    got: list[PreparedChunk] = []
    with pytest.raises(RuntimeFailure, match=r"worker process .* ended unexpectedly .* "
                                             r"ingest the file again"):
        for chunk in _pooled(_DiesAtRowEleven(), raw, {}, 2):  # type: ignore[arg-type]
            got.append(chunk)
    assert len(got) <= 2 and all(c.rows_read == 5 for c in got)


_READER = """
import sys
from decisionops.agent.sources._parallel import iter_prepared
chunks = iter_prepared(sys.argv[1], batch_rows=50, jobs=2)
next(chunks)
print("reading", flush=True)
sys.stdin.read()  # until killed
"""


def test_worker_processes_end_when_the_reading_process_is_killed(tmp_path: Path) -> None:
    """A killed ``ingest`` (the OOM killer, kill -9) leaves no worker processes behind
    holding their memory."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    path = tmp_path / "p.jsonl"
    path.write_text("".join(
        f'{{"id": "k-{i}", "model": "m", "kind": "churn", "entity_type": "account", '
        f'"entity_id": "A-{i}", "score": 0.2, "observed_at": "2026-11-20T08:00:00Z"}}\n'
        for i in range(2000)))
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        helpers = psutil.Process(reader.pid).children(recursive=True)
        assert helpers  # the forkserver and its workers
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(p.is_running() and p.status() != "zombie"
                                                  for p in helpers):
            time.sleep(0.1)
        left = [p.pid for p in helpers if p.is_running() and p.status() != "zombie"]
        assert not left, f"still running after the reader was killed: {left}"
    finally:
        reader.kill()


def test_the_default_reads_a_parquet_file_of_many_rows_in_worker_processes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(trial 20: a compressed 1M-row Parquet file of 14 MB, under the size where worker
    processes pay, was read in one process, at half the rate of the same rows as CSV.)
    A Parquet file's rows, from its footer, decide; a small CSV still stays here."""
    from decisionops.agent.sources import _parallel

    pooled: list[int] = []
    real = _parallel._pooled
    monkeypatch.setattr(_parallel, "_pooled", lambda *a: pooled.append(a[-1]) or real(*a))
    monkeypatch.setattr(_parallel, "default_jobs", lambda: 2)
    monkeypatch.setattr(_parallel, "PARALLEL_ROWS", 200)
    rows = 300
    table = pa.table({"id": [f"pq-{i}" for i in range(rows)], "model": ["m"] * rows,
                      "kind": ["churn"] * rows, "entity_type": ["account"] * rows,
                      "entity_id": [f"A-{i}" for i in range(rows)], "score": [0.5] * rows,
                      "observed_at": ["2026-11-20T08:00:00Z"] * rows})
    path = tmp_path / "many.parquet"
    pq.write_table(table, path)
    assert path.stat().st_size < _parallel.PARALLEL_BYTES
    assert sum(c.rows_read for c in iter_prepared(path, batch_rows=50)) == rows
    assert pooled == [2]
    small = tmp_path / "few.parquet"
    pq.write_table(table.slice(0, 100), small)
    assert sum(c.rows_read for c in iter_prepared(small, batch_rows=50)) == 100
    assert pooled == [2]
