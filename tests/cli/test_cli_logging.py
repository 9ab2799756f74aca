"""What the product's modules log reaches the person at the terminal as the CLI's own
warnings do (trial 12: a tool server down at start was a bare, unlabelled stderr line,
and nothing below a warning could be asked for)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from decisionops.agent.cli._common import log_to_stderr

_LOGGER = logging.getLogger("decisionops")


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    handlers, level = list(_LOGGER.handlers), _LOGGER.level
    yield
    _LOGGER.handlers[:] = handlers
    _LOGGER.setLevel(level)


def test_warnings_are_labelled_and_info_is_shown_when_asked(
        capsys: pytest.CaptureFixture[str]) -> None:
    log_to_stderr({})
    log_to_stderr({})  # once, however often the CLI starts a command in one process
    logging.getLogger("decisionops.tools").warning("MCP server %r is down at start", "desk")
    logging.getLogger("decisionops.tools").info("listed again")
    err = capsys.readouterr().err
    assert err == "warning: MCP server 'desk' is down at start\n", err

    log_to_stderr({"DECISIONOPS_LOG_LEVEL": "info"})
    logging.getLogger("decisionops.graphs.engine").info("a [b] c")  # text, not markup
    logging.getLogger("httpx").warning("not ours")  # another library's: not ours to show
    assert capsys.readouterr().err == "info: a [b] c\n"


def test_an_unknown_level_is_said_and_warnings_still_show(
        capsys: pytest.CaptureFixture[str]) -> None:
    log_to_stderr({"DECISIONOPS_LOG_LEVEL": "loud"})
    err = capsys.readouterr().err
    assert "DECISIONOPS_LOG_LEVEL: 'loud' is not one of debug, info, warning, error" in err
    logging.getLogger("decisionops.api").error("boom")
    assert capsys.readouterr().err == "error: boom\n"
