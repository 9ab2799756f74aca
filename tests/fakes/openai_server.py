"""The scripted OpenAI-compatible server as a test double.

``openai_server`` starts ``evals.scripted.ScriptedServer`` (a real HTTP server on
127.0.0.1, one thread per request) for one test, and fails the test when a call arrives
that the script did not expect or when a scripted response is left over. Script it
with ``completion``, ``call``, ``error`` and ``raw``; inspect ``requests``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from decisionops.evals.scripted import ScriptedServer, call, completion, error, raw

__all__ = ["ScriptedServer", "call", "completion", "error", "openai_server", "raw"]


@pytest.fixture
def openai_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server
        problems = server.problems()
    if problems:
        pytest.fail("scripted OpenAI server: " + "; ".join(problems), pytrace=False)
