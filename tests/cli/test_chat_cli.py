"""``decisionops chat`` in the terminal answers free phrasing without an LLM, as the
local operator, through the same chat service as the web chat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Cli
from tests.cli.test_cross_process import HEADER, ROW


def test_free_phrasing_in_the_terminal(cli: Cli, write: Callable[[str, str], Path]) -> None:
    assert "why didn't we act" in cli("chat", "--help").stdout  # the example
    cli("ingest", str(write("p.csv", HEADER + ROW.format(id="term-1", account="ACC-10004",
                                                        value=30000))))
    cli("run", "--once")
    status = cli("chat", "-m", "so what's happening with acc-10004?").stdout
    assert "Status of ACC-10004" in status and "term-1" in status
    held = cli("chat", "-m", "please pause ACC-10004 for 2 days because QBR").stdout
    assert "Hold #" in held
    assert "QBR" in cli("holds", "list").stdout
    assert "Released #" in cli("chat", "-m", "release ACC-10004").stdout
    assert "I did not understand" in cli("chat", "-m", "sing me a song").stdout
