"""A scripted OpenAI-compatible chat-completions server: a real HTTP server on
127.0.0.1 (random port, one thread per request) that plays one scripted entry per call.

Used where no real model may be called: the test suite (``tests/fakes/openai_server``
adds a fixture that fails the test on unexpected or leftover calls), ``decisionops
eval`` without a configured endpoint, and ``bench/planner.py``.

An entry is JSON-able data, so scripts can be stored in files::

    completion(content=None, tool_calls=[call("submit_plan", {...})], usage=(900, 120))
    completion(content='{"rationale": …}', finish_reason="stop")
    error(429, "slow down", headers={"Retry-After": "2"})
    error(400, "tools are not supported by this model")
    raw(200, "this is not JSON")
    {... "delay": 1.5}           sleep before answering (timeouts)
    {... "expect": {"tools": True, "response_format": False, "contains": "ACC-1"}}

Requests are recorded (``requests``, bodies and the Authorization header's presence,
never its value). ``responder`` answers calls when the script is empty (benches);
without one, such a call gets a 500 and is listed by ``problems()``. ``careful_model``
is such a responder: it submits the playbook plan the prompt quotes.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedServer", "call", "careful_model", "completion", "error", "raw"]

Entry = dict[str, Any]


def call(name: str, arguments: Mapping[str, Any] | str, *, id: str | None = None) -> dict[str, Any]:
    """A tool call; ``arguments`` as a dict (serialized) or a raw (possibly broken) string."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"name": name, "arguments": text, **({"id": id} if id else {})}


def completion(content: str | None = None, *, tool_calls: Iterable[dict[str, Any]] = (),
               finish_reason: str | None = None, usage: tuple[int, int] | None = None,
               delay: float = 0.0, expect: Mapping[str, Any] | None = None) -> Entry:
    calls = list(tool_calls)
    entry: Entry = {"kind": "completion", "content": content, "tool_calls": calls,
                    "finish_reason": finish_reason or ("tool_calls" if calls else "stop")}
    if usage is not None:
        entry["usage"] = list(usage)
    if delay:
        entry["delay"] = delay
    if expect:
        entry["expect"] = dict(expect)
    return entry


def error(status: int, message: str, *, headers: Mapping[str, str] | None = None,
          delay: float = 0.0) -> Entry:
    entry: Entry = {"kind": "error", "status": status, "message": message,
                    "headers": dict(headers or {})}
    if delay:
        entry["delay"] = delay
    return entry


def raw(status: int, body: str, *, headers: Mapping[str, str] | None = None) -> Entry:
    return {"kind": "raw", "status": status, "body": body, "headers": dict(headers or {})}


class ScriptedServer:
    """Plays scripted entries in order; use as a context manager."""

    def __init__(self, responder: Callable[[dict[str, Any]], Entry] | None = None) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Entry] = deque()
        self._problems: list[str] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ScriptedServer:
        handler = _handler(self)
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # ------------------------------------------------------------------ script

    def play(self, *entries: Entry) -> ScriptedServer:
        with self._lock:
            self._script.extend(entries)
        return self

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._script)

    def problems(self) -> list[str]:
        """Unexpected calls, failed expectations and leftover entries."""
        with self._lock:
            found = list(self._problems)
            if self._script:
                found.append(f"{len(self._script)} scripted response(s) were never requested")
        return found

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._problems.clear()
            self.requests.clear()

    def _next(self, body: dict[str, Any]) -> tuple[Entry | None, int]:
        with self._lock:
            self._counter += 1
            number = self._counter
            entry = self._script.popleft() if self._script else None
            if entry is None and self.responder is None:
                self._problems.append(f"call {number}: unexpected (the script is empty)")
        if entry is None and self.responder is not None:
            entry = self.responder(body)
        if entry is not None:
            for problem in _unmet(entry.get("expect") or {}, body):
                with self._lock:
                    self._problems.append(f"call {number}: {problem}")
        return entry, number


def _unmet(expect: Mapping[str, Any], body: Mapping[str, Any]) -> list[str]:
    problems = []
    if "tools" in expect and bool(body.get("tools")) != bool(expect["tools"]):
        problems.append(f"expected tools={expect['tools']}")
    if "response_format" in expect and bool(body.get("response_format")) != bool(
            expect["response_format"]):
        problems.append(f"expected response_format={expect['response_format']}")
    if "contains" in expect and str(expect["contains"]) not in json.dumps(body.get("messages")):
        problems.append(f"expected the messages to contain {expect['contains']!r}")
    return problems


def _completion_body(entry: Entry, request: Mapping[str, Any], number: int) -> dict[str, Any]:
    calls = [{"id": c.get("id") or f"call_{number}_{i}", "type": "function",
              "function": {"name": c["name"], "arguments": c["arguments"]}}
             for i, c in enumerate(entry.get("tool_calls") or [])]
    message: dict[str, Any] = {"role": "assistant", "content": entry.get("content")}
    if calls:
        message["tool_calls"] = calls
    usage = entry.get("usage")
    if usage is None:
        prompt = max(1, len(json.dumps(request.get("messages", []))) // 4)
        usage = [prompt, max(1, len(json.dumps(message)) // 4)]
    return {"id": f"chatcmpl-{number}", "object": "chat.completion", "created": 0,
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": entry.get("finish_reason", "stop"), "logprobs": None}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                      "total_tokens": usage[0] + usage[1]}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """Many planners call at once (the default backlog of 5 refuses connections)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that left before its answer (a timeout, a stopped worker) is not an
        # error of the server's; anything else is printed as socketserver does.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive, as real endpoints (a connection per call would measure TCP set-up),
        # and no Nagle: headers and body go out as two writes, and the second would wait
        # for the client's delayed ACK (40 ms a call).
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test output is ours

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            with server._lock:
                server.requests.append({"path": self.path, "body": body,
                                        "authorization": bool(self.headers.get("Authorization"))})
            if not self.path.endswith("/chat/completions"):
                with server._lock:
                    server._problems.append(f"unexpected path {self.path}")
                self._send(404, {"error": {"message": "not found"}})
                return
            entry, number = server._next(body)
            if entry is None:
                self._send(500, {"error": {"message": "unexpected call: the script is empty",
                                           "type": "scripted_server"}})
                return
            if entry.get("delay"):
                time.sleep(float(entry["delay"]))
            if entry["kind"] == "error":
                self._send(entry["status"], {"error": {"message": entry["message"],
                                                       "type": "scripted", "code": None}},
                           entry.get("headers"))
            elif entry["kind"] == "raw":
                self._send(entry["status"], entry["body"], entry.get("headers"))
            else:
                self._send(200, _completion_body(entry, body, number))

        def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None
                  ) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            encoded = data.encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(encoded)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(encoded)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler


_PLAYBOOK_PLAN = re.compile(r'<data-(\w+) source="playbook_plan">\n(.*?)\n</data-\1>', re.S)
_PREDICTION = re.compile(r'<data-(\w+) source="prediction">\n(.*?)\n</data-\1>', re.S)


def careful_model(body: dict[str, Any], *, outspoken: bool = False) -> dict[str, Any]:
    """Submit the playbook plan quoted in the request (what a careful model does here).
    ``outspoken``: its rationale also names the prediction's largest driver, so a cached
    plan fits only predictions that share that driver."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = _PLAYBOOK_PLAN.search(user)
    if found is None:
        return completion("I cannot plan without a playbook.")
    plan = json.loads(found.group(2))
    steps = [{key: step[key] for key in ("id", "function", "tool", "arguments", "depends_on",
                                         "rationale", "expected_cost", "expected_value")}
             for step in plan["steps"]]
    rationale = "The playbook plan fits this prediction."
    prediction = _PREDICTION.search(user)
    if outspoken and prediction is not None:
        explanation = json.loads(prediction.group(2)).get("explanation") or {}
        if explanation:
            driver = max(explanation, key=lambda name: abs(explanation[name]))
            rationale += f" It answers the {driver.replace('_', ' ')} signal."
    return completion(tool_calls=[call("submit_plan", {"rationale": rationale,
                                                       "steps": steps})])
