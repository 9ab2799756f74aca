"""The scripted server itself: unexpected calls, leftovers and failed expectations are
reported (the ``openai_server`` fixture turns them into a test failure)."""

from __future__ import annotations

import json
import urllib.request

from decisionops.evals import ScriptedServer, completion


def _post(server: ScriptedServer, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + "/chat/completions",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_problems_are_reported() -> None:
    with ScriptedServer() as server:
        server.play(completion("a", expect={"tools": True}), completion("b"))
        status, body = _post(server, {"model": "m", "messages": []})
        assert status == 200 and body["choices"][0]["message"]["content"] == "a"
        assert server.problems() == ["call 1: expected tools=True",
                                     "1 scripted response(s) were never requested"]
        _post(server, {"model": "m", "messages": []})
        status, body = _post(server, {"model": "m", "messages": []})
        assert status == 500 and "unexpected call" in body["error"]["message"]
        assert server.problems() == ["call 1: expected tools=True",
                                     "call 3: unexpected (the script is empty)"]


def test_a_responder_answers_when_the_script_is_empty() -> None:
    with ScriptedServer(responder=lambda body: completion(body["model"])) as server:
        assert _post(server, {"model": "echo", "messages": []})[1]["choices"][0]["message"][
            "content"] == "echo"
        assert server.problems() == []
