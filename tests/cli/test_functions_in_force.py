"""A functions file that stops loading while services run on it (trial 32 #4: the
running `serve` kept the policies it had and took answers, while every CLI command,
`ledger verify` included, exited 2 with the YAML error). A command other than the loop
and the server uses the policies last in force in this data folder, as the running
server does, and says so; the loop and the server refuse to start on it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from decisionops.agent.runtime import IN_FORCE_FILE
from tests.cli.conftest import Cli

BUNDLED = Path(__file__).resolve().parents[2] / "agent" / "data" / "functions.yaml"


def test_commands_use_the_policies_last_in_force_and_say_so(tmp_path: Path) -> None:
    functions = tmp_path / "functions.yaml"
    shutil.copy(BUNDLED, functions)
    cli = Cli(tmp_path, processes=True)  # the warning is logged: the real stderr
    cli.env["DECISIONOPS_FUNCTIONS_FILE"] = str(functions)
    cli("approvals", "list")
    kept = tmp_path / "home" / IN_FORCE_FILE
    assert kept.read_bytes() == functions.read_bytes()
    functions.write_text(re.sub(r"(?m)^functions:", "functions: [broken", functions.read_text()))
    out = cli("ledger", "verify")
    said = " ".join(out.stderr.split())
    assert f"{functions} does not load" in said, said
    assert "the function policies last in force in this data folder apply" in said, said
    assert cli.json("approvals", "list") == []
    assert kept.read_text().startswith(BUNDLED.read_text()[:20])  # the good one stays
    # The loop refuses to start on it, naming the file, as before.
    refused = cli("run", "--once", code=2)
    assert "functions.yaml" in refused.stderr


def test_without_policies_in_force_a_broken_file_is_refused(tmp_path: Path) -> None:
    functions = tmp_path / "functions.yaml"
    functions.write_text("functions: [broken\n")
    cli = Cli(tmp_path)
    cli.env["DECISIONOPS_FUNCTIONS_FILE"] = str(functions)
    cli("approvals", "list", code=2)
