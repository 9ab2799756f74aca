"""The drop folder (``agent.dropfolder``): only finished files, rejected files moved
with an error file beside them and logged, never an overwrite."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionops.agent.housekeeping import poll_source
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings, SourceConfig

HEADER = "id,model,kind,entity_type,entity_id,score,value_at_stake,observed_at\n"


def _row(i: int, score: str = "0.4") -> str:
    return f"d-{i},churn-gbm,churn,account,ACC-{i},{score},100,2026-11-20T08:00:00Z\n"


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(Settings(home=tmp_path / "home"), actor="worker-a") as runtime:
        yield runtime


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def _poll(rt: Runtime, drop: Path) -> int:
    return poll_source(rt, SourceConfig(name="drop", type="directory", path=drop))["source:drop"]


def _stored(rt: Runtime) -> set[str]:
    return {p.id for p in rt.store.predictions.untriaged(1000)}


def test_a_file_still_being_written_waits_until_it_stops_changing(rt, drop):
    path = drop / "nightly.csv"
    path.write_text(HEADER + _row(1))  # the writer has flushed one row of three
    assert _poll(rt, drop) == 0
    with path.open("a") as handle:
        handle.write(_row(2))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert _poll(rt, drop) == 0  # it changed since the last look: still being written
    with path.open("a") as handle:
        handle.write(_row(3))
    assert _poll(rt, drop) == 0
    assert _stored(rt) == set()
    assert _poll(rt, drop) == 3  # two looks alike: finished, every row taken
    assert (drop / "processed" / "nightly.csv").exists() and not path.exists()


def test_a_file_cut_off_mid_line_waits_for_its_writer(
        rt: Runtime, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that pauses longer than two polls mid-line (``...,0.`` of ``0.12``):
    a line file that does not end with a newline is not finished. Taken once it does,
    or, for a producer that writes no final newline, once it has rested ``QUIET_SECONDS``."""
    import decisionops.agent.dropfolder as dropfolder

    path = drop / "nightly.csv"
    path.write_text(HEADER + _row(1) + "d-2,churn-gbm,churn,account,ACC-2,0.")
    for _ in range(3):
        assert _poll(rt, drop) == 0  # the same at every look, and still not finished
    with path.open("a") as handle:
        handle.write("12,100,2026-11-20T08:00:00Z\n")
    assert _poll(rt, drop) == 0 and _poll(rt, drop) == 2
    assert rt.store.predictions.get("d-2").score == 0.12
    last = drop / "last.jsonl"  # no final newline, and nothing more comes
    last.write_text(json.dumps({"id": "j-1", "model": "m", "kind": "churn",
                                "entity_type": "account", "entity_id": "ACC-9",
                                "score": 0.3, "observed_at": "2026-11-20T08:00:00Z"}))
    assert _poll(rt, drop) == 0 and _poll(rt, drop) == 0
    monkeypatch.setattr(dropfolder, "QUIET_SECONDS", 0.0)
    assert _poll(rt, drop) == 1


@pytest.mark.parametrize("name", ["nightly.csv.part", ".nightly.csv", "~nightly.csv",
                                  "nightly.csv.tmp", "notes.txt"])
def test_unfinished_and_hidden_files_are_never_taken(rt, drop, name):
    (drop / name).write_text(HEADER + _row(1))
    for _ in range(3):
        assert _poll(rt, drop) == 0
    assert (drop / name).exists() and not (drop / "processed").exists()


def test_rejected_file_is_moved_with_its_errors_and_logged(rt, drop, caplog):
    (drop / "bad.csv").write_text("id,score\nx,notanumber\n")
    (drop / "mixed.csv").write_text(HEADER + _row(1) + _row(2, score="high") + _row(3, "1.7"))
    with caplog.at_level(logging.WARNING, logger="decisionops.sources"):
        _poll(rt, drop)
        assert _poll(rt, drop) == 1
    rejected = drop / "rejected"
    assert (rejected / "bad.csv").exists()
    assert "the header lacks" in (rejected / "bad.csv.errors.txt").read_text()
    detail = json.loads((rejected / "bad.csv.errors.json").read_text())
    assert detail["refused"] and detail["ingested"] == 0
    # A file refused whole says why as `ingest --json` and the HTTP API do.
    assert (detail["error"]["code"], detail["error"]["field"]) == ("invalid_input", "header")
    assert detail["error"]["location"].endswith("bad.csv")
    assert "the header lacks" in detail["error"]["message"]
    mixed = json.loads((drop / "processed" / "mixed.csv.errors.json").read_text())
    assert [(e["row"], e["field"]) for e in mixed["errors"]] == [(2, "score"), (3, "score")]
    # The counts of `decisionops ingest --json` and the HTTP API, under their names.
    assert (mixed["rows_read"], mixed["ingested"], mixed["already_stored"],
            mixed["rejected"]) == (3, 1, 0, 2)
    text = caplog.text
    assert "bad.csv rejected" in text and "mixed.csv taken with 2 rejected rows" in text


def test_a_second_file_with_a_processed_name_is_kept_beside_it(rt, drop):
    for i, rows in enumerate([_row(1), _row(2), "id,score\n"]):
        (drop / "daily.csv").write_text(HEADER + rows if i < 2 else rows)
        _poll(rt, drop)
        _poll(rt, drop)
    processed = sorted(p.name for p in (drop / "processed").iterdir())
    assert processed == ["daily-2.csv", "daily.csv"]
    assert "d-2" in (drop / "processed" / "daily-2.csv").read_text()
    assert "d-1" in (drop / "processed" / "daily.csv").read_text()
    (drop / "rejected" / "daily-2.csv").write_text("taken")
    (drop / "daily.csv").write_text("id,score\n")
    _poll(rt, drop)
    _poll(rt, drop)
    assert sorted(p.name for p in (drop / "rejected").iterdir() if p.suffix == ".csv") == [
        "daily-2.csv", "daily-3.csv", "daily.csv"]
    assert (drop / "rejected" / "daily-3.csv.errors.txt").exists()
    assert _stored(rt) == {"d-1", "d-2"}


def test_a_file_dropped_again_counts_its_rows_as_already_stored(rt, drop):
    (drop / "a.csv").write_text(HEADER + _row(1) + _row(2))
    _poll(rt, drop)
    assert _poll(rt, drop) == 2
    # The same rows again, with one bad row: its report says what was stored before.
    (drop / "a.csv").write_text(HEADER + _row(1) + _row(2) + _row(3, score="high"))
    _poll(rt, drop)
    assert _poll(rt, drop) == 0
    again = json.loads((drop / "processed" / "a-2.csv.errors.json").read_text())
    assert (again["rows_read"], again["ingested"], again["already_stored"],
            again["rejected"]) == (3, 0, 2, 1)
