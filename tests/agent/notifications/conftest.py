"""Real local receivers for approver notifications: a Slack-compatible webhook (an HTTP
server on 127.0.0.1 recording each POST, optionally failing the first ones) and an SMTP
server (aiosmtpd's Controller, with AUTH)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER, SMTP_PASSWORD = "notifier", "smtp-s3cret-canary"
WEBHOOK_PATH = "/services/T000/B000/webhook-s3cret-canary"


@dataclass
class Webhook:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0
    calls: int = 0
    delay: float = 0.0
    """Seconds each POST waits before it is answered (a slow receiver)."""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.calls += 1
            time.sleep(hook.delay)
            if self.path != WEBHOOK_PATH or hook.calls <= hook.fail_first:
                self.send_response(500 if self.path == WEBHOOK_PATH else 404)
                self.end_headers()
                return
            hook.posts.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    url: str
    messages: list[tuple[list[str], Message]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    port = _free_port()
    box = Mailbox(url=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}")

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER
              and data.password.decode() == SMTP_PASSWORD)
        return AuthResult(success=ok)

    controller = Controller(Handler(), hostname="127.0.0.1", port=port,
                            authenticator=authenticate, auth_require_tls=False)
    controller.start()
    yield box
    controller.stop()
