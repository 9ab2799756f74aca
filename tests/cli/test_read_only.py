"""A data folder the command may not write (a read-only volume, a store opened
read-only): every write is refused in a sentence that says so, on the CLI and over
HTTP, never a traceback or an "internal error" (trial 32 #2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli


def _read_only_store(cli: Cli) -> dict[str, str]:
    store = cli.cwd / "home" / "decisionops.sqlite"
    return {"DECISIONOPS_DATABASE_URL": f"sqlite:///file:{store}?mode=ro&uri=true"}


def test_a_write_to_a_read_only_store_is_refused_in_a_sentence(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("holds", "list")  # the store exists, migrated
    ro = _read_only_store(cli)
    out = cli("holds", "add", "ACC-10004", "--until", "+1d", code=1, env=ro)
    said = " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr and "sqlalchemy" not in said, out.stderr
    assert "cannot write" in said and "read-only" in said, said
    body = json.loads(cli("holds", "add", "ACC-10004", "--until", "+1d", "--json", code=1,
                          env=ro).stdout)["error"]
    assert body["code"] == "unavailable" and "read-only" in body["message"], body
    # reading still works, and nothing was written
    assert cli.json("holds", "list", env=ro) == []


def test_an_unwritable_lock_file_is_said_not_raised() -> None:
    from decisionops.agent.errors import cannot_write

    assert cannot_write(ValueError("x")) is None
    said = cannot_write(OSError(30, "Read-only file system", "/data/home/worker.lock"))
    assert said is not None and "/data/home/worker.lock" in said and "read-only" in said
    # a file a user may not read says so itself: not taken for a read-only folder
    assert cannot_write(PermissionError(13, "Permission denied", "/data/in.csv")) is None
