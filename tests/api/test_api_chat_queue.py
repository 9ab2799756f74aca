"""The ops chat lists the needs-a-human queue without an LLM, with each reason."""

from __future__ import annotations

from tests.api.conftest import Service
from tests.api.test_api_chat import _say
from tests.api.test_api_predictions import queued  # noqa: F401  (fixture)


def test_queue_command_lists_what_waits_for_a_person(queued: Service) -> None:  # noqa: F811
    assert "queue" in _say(queued, "olga", "help")
    reply = _say(queued, "dana", "queue")
    assert "fraud-1 (fraud ACC-10003, score 0.96): no_playbook" in reply
    assert "churn-novalue (churn ACC-10002, score 0.90): missing_value" in reply
    assert "/queue" in reply and "pick|plan|supply-value|dismiss" in reply
    queued.post("/v1/predictions/fraud-1/dismiss", "olga", {"reason": "test"})
    queued.post("/v1/predictions/churn-novalue/dismiss", "olga", {"reason": "test"})
    assert _say(queued, "olga", "queue") == "Nothing needs a human."
