"""The HTTP service on fresh SQLite files: an app with users of every role, driven
through httpx (Starlette's TestClient, unit level) or over real HTTP (uvicorn in a
thread on 127.0.0.1, random port)."""

from __future__ import annotations

import atexit
import hashlib
import hmac
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from decisionops.agent.api import ServiceSettings, add_user, create_app
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.worker import Worker, wait_for
from tests.support import pending, start_decisions

WEBHOOK_SECRET = "whsec_test_current"
OLD_WEBHOOK_SECRET = "whsec_test_previous"

USERS = {
    "dana": ("approver", ["finance"]),
    "omar": ("approver", ["finance"]),
    "raj": ("approver", ["sales"]),
    "mia": ("approver", ["sales"]),
    "max": ("approver", ["maintenance"]),
    "olga": ("operator", []),
    "feeder": ("ingest", []),
    "root": ("admin", []),
}


def churn_record(pid: str = "churn-api-1", *, account: str = "ACC-10004", score: float = 0.9,
                 value: float = 40_000, **features: Any) -> dict[str, Any]:
    return {"id": pid, "model": "churn-gbm", "model_version": "t", "kind": "churn",
            "entity_type": "account", "entity_id": account, "score": score,
            "value_at_stake": value, "observed_at": "2026-11-20T08:00:00Z",
            "features": {"segment": "enterprise", "plan": "scale", **features},
            "explanation": {"support_tickets_90d": 1.2, "login_trend_30d": -0.3}}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> tuple[int, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return ts, mac


CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium, which Playwright drives in the browser tests (no browser download)."""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class Service:
    app: FastAPI
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def rt(self) -> Runtime:
        return self.app.state.service.runtime  # type: ignore[no-any-return]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.auth(user), **kwargs)

    def post(self, path: str, user: str, body: Any = None, **kwargs: Any) -> Any:
        return self.client.post(path, headers=self.auth(user), json=body, **kwargs)

    def decide(self, record: dict[str, Any] | None = None) -> str:
        """Ingest over the API (as the ingest user), then triage and start the decision."""
        record = record or churn_record()
        response = self.post("/v1/predictions", "feeder", {"predictions": [record]})
        assert response.status_code == 200, response.text
        self.rt.triage_pending()
        start_decisions(self.rt)
        return self.rt.decision_ids([record["id"]])[0]

    def work(self) -> None:
        """What the service's worker does: apply the answers recorded over HTTP."""
        while Worker(self.rt).tick().did_work:
            pass

    def pending(self, decision_id: str) -> dict[str, dict[str, Any]]:
        return pending(self.rt, decision_id)

    def answer(self, user: str, approval: dict[str, Any], verb: str = "approve",
               **body: Any) -> Any:
        return self.post(f"/v1/approvals/{approval['id']}/{verb}", user,
                         {"plan_hash": approval["plan_hash"], **body})

    def refusals(self, decision_id: str) -> list[dict[str, Any]]:
        return [e.body | {"actor": e.actor} for e in self.rt.store.ledger.entries(decision_id)
                if e.event == "approval.refused"]

    def webhook(self, body: bytes, *, delivery: str, secret: str = WEBHOOK_SECRET,
                timestamp: int | None = None, signature: str | None = None,
                fmt: str | None = None) -> Any:
        ts, mac = sign(secret, body, timestamp)
        header = signature if signature is not None else f"t={ts},v1={mac}"
        return self.client.post("/v1/webhooks/predictions" + (f"?format={fmt}" if fmt else ""),
                                content=body, headers={"DecisionOps-Signature": header,
                                                       "DecisionOps-Delivery": delivery,
                                                       "Content-Type": "application/json"})


_TEMPLATE: dict[str, Path] = {}


def _seeded(home: Path) -> None:
    """Copy a migrated, seeded data folder made once per test session (saves ~0.3 s)."""
    if "home" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp(prefix="decisionops-template-")) / "home"
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)  # not left in /tmp
        Runtime(Settings(home=template), actor="template").close()
        _TEMPLATE["home"] = template
    shutil.copytree(_TEMPLATE["home"], home)


def make_app(home: Path, *, four_eyes: bool = False, llm: str | None = None,
             functions: Callable[[dict[str, Any]], None] | None = None,
             settings: dict[str, Any] | None = None, **service: Any) -> FastAPI:
    """``functions``: changes the bundled function policies (a dict of them) in place;
    ``settings``: more runtime settings."""
    _seeded(home)
    options: dict[str, Any] = {"home": home, "tool_backoff_seconds": 0.01, **(settings or {})}
    if llm:
        options |= {"llm_base_url": llm, "llm_model": "scripted", "llm_api_key": "sk-canary"}
    if four_eyes or functions is not None:
        from importlib import resources
        bundled = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                                 .read_text("utf-8"))
        if four_eyes:
            bundled["functions"]["finance"]["four_eyes"] = True
        if functions is not None:
            functions(bundled["functions"])
        path = home.parent / "functions.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(bundled))
        options["functions_file"] = path
    conf = Settings(**options)
    defaults = {"worker_interval_seconds": 0,
                "webhook_secrets": [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET],
                "session_secret": "test-session-secret-0123456789"}
    return create_app(conf, service=ServiceSettings(**(defaults | service)),
                      runtime_factory=lambda: Runtime(conf, actor="api-test"))


def add_users(app: FastAPI) -> dict[str, str]:
    rt = app.state.service.runtime
    return {name: add_user(rt, name, role=role, functions=functions, actor="test")[0]
            for name, (role, functions) in USERS.items()}


@contextmanager
def serve(home: Path, **kwargs: Any) -> Iterator[Service]:
    app = make_app(home, **kwargs)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Service(app, client, add_users(app))


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    with serve(tmp_path / "home") as service:
        yield service


@pytest.fixture
def svc4(tmp_path: Path) -> Iterator[Service]:
    """Finance has ``four_eyes: true``."""
    with serve(tmp_path / "home", four_eyes=True) as service:
        yield service


@dataclass
class Live:
    url: str
    app: FastAPI
    tokens: dict[str, str]

    @property
    def rt(self) -> Runtime:
        return self.app.state.service.runtime  # type: ignore[no-any-return]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def pending(self, decision_id: str, functions: int, timeout: float = 30) -> dict[str, Any]:
        """The decision's pending requests, once the service's worker has asked
        ``functions`` functions."""
        assert wait_for(lambda: len(pending(self.rt, decision_id)) == functions, timeout), \
            pending(self.rt, decision_id)
        return pending(self.rt, decision_id)

    def settled(self, decision_id: str, timeout: float = 30) -> str:
        """The decision's status once the worker has applied every answer."""
        wait_for(lambda: self.rt.store.decisions.get(decision_id).status in (
            "completed", "failed", "rejected", "compensated", "needs_human"), timeout)
        return self.rt.store.decisions.get(decision_id).status


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on 127.0.0.1 (random port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this. asyncio sets it only on sockets made with
    # proto=IPPROTO_TCP; without it a keep-alive connection's next response waited for
    # the client's delayed ACK (about 40 ms a request, the service's time or not).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                           limit_concurrency=64))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The service over real HTTP, with its worker loop (answers are applied by it)."""
    app = make_app(tmp_path / "home", worker_interval_seconds=0.05)
    with live_server(app) as url:
        yield Live(url, app, add_users(app))


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
