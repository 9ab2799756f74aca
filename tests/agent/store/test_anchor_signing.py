"""Anchors we post are signed the Standard Webhooks way (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``) when a signing secret is set, verified here
with the ``standardwebhooks`` package as a receiver would; the Bearer token existing
receivers check is still sent, and without a secret nothing changes."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from decisionops.agent.housekeeping import post_ledger_anchor
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store._anchor import ANCHOR_FORMAT, Anchor, post_anchor

SECRET = "whsec_" + base64.b64encode(b"anchor-signing-secret-0123456789").decode()


class _Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/anchors"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    yield server
    server.close()


def _anchor() -> Anchor:
    return Anchor.model_validate({"format": ANCHOR_FORMAT, "seq": 3, "hash": "a" * 64,
                                  "at": "2026-01-02T03:04:05+00:00", "chain": "b" * 64,
                                  "exported_at": "2026-01-02T03:05:00+00:00"})


def test_a_signed_anchor_verifies_with_standardwebhooks(receiver: _Receiver) -> None:
    post_anchor(_anchor(), receiver.url, headers={"Authorization": "Bearer tok"},
                signing_secret=SECRET)
    [(headers, body)] = receiver.received
    assert Webhook(SECRET).verify(body, headers) == _anchor().model_dump(mode="json")
    assert headers["authorization"] == "Bearer tok"  # existing receivers keep working
    assert headers["webhook-id"] == f"anchor_3_{'a' * 16}"  # the same on every retry
    assert headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b'"seq":3', b'"seq":4'), headers)
    other = "whsec_" + base64.b64encode(b"another-secret-0123456789abcdef!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_without_a_secret_the_post_is_unsigned_as_before(receiver: _Receiver) -> None:
    post_anchor(_anchor(), receiver.url)
    [(headers, body)] = receiver.received
    assert "webhook-signature" not in headers
    assert json.loads(body) == _anchor().model_dump(mode="json")


def test_the_loop_signs_with_the_configured_secret(receiver: _Receiver, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", ledger_anchor_url=receiver.url,
                        ledger_anchor_signing_secret=SECRET, ledger_anchor_token="tok")
    with Runtime(settings, actor="t") as rt:
        assert post_ledger_anchor(rt)["anchors_posted"] == 1
    [(headers, body)] = receiver.received
    assert Webhook(SECRET).verify(body, headers)["format"] == ANCHOR_FORMAT
    assert headers["authorization"] == "Bearer tok"
    assert "anchor-signing-secret" not in repr(settings)


def test_the_cli_posts_with_the_configured_token_and_secret_as_the_loop_does(
        receiver: _Receiver, tmp_path: Path) -> None:
    # Found in a black-box trial: `ledger anchor --post` sent no Authorization header,
    # though the README says the token goes with it too.
    from tests.cli.conftest import Cli

    cli = Cli(tmp_path)
    cli("ledger", "anchor", "--post", receiver.url, env={
        "DECISIONOPS_LEDGER_ANCHOR_TOKEN": "tok",
        "DECISIONOPS_LEDGER_ANCHOR_SIGNING_SECRET": SECRET})
    [(headers, body)] = receiver.received
    assert headers["authorization"] == "Bearer tok"
    assert Webhook(SECRET).verify(body, headers)["format"] == ANCHOR_FORMAT


def test_a_malformed_signing_secret_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ledger_anchor_signing_secret"):
        Settings(home=tmp_path / "home", ledger_anchor_signing_secret="whsec_")
