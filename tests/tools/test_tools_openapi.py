"""OpenAPI 3 operations as tools, against a real local HTTP service and its document:
only allow-listed operations, the credential from an env var, an ``Idempotency-Key`` on
every mutating call, retryable 5xx, and the outbound host allow-list (SSRF)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from decisionops.agent.errors import ConfigError, ToolArgumentsError, ToolCallError
from decisionops.agent.settings import OpenApiToolsConfig, Settings
from decisionops.tools._openapi import openapi_tools
from decisionops.tools._outbound import HostGuard
from decisionops.tools.registry import ToolRegistry
from decisionops.tools.sources import host_guard
from tests.tools.servers.shop_api import build_app


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[str, Any]]:
    app = build_app()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield base, app
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def spec_file(shop: tuple[str, Any], tmp_path: Path) -> Path:
    base, app = shop
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(httpx.get(f"{base}/openapi.json").json()))
    app.state.requests.clear()
    return path


def _config(base: str, spec: str, **extra: Any) -> OpenApiToolsConfig:
    return OpenApiToolsConfig.model_validate({
        "name": "shop", "spec": spec, "base_url": base, "function": "finance",
        "operations": ["createCredit", "getAccount", "bounce"], "auth_header": "Authorization",
        "auth_env": "SHOP_TOKEN", "auth_scheme": "Bearer",
        "targets": {"createCredit": ["account_id"]}, **extra})


@pytest.fixture
def registry(shop: tuple[str, Any], spec_file: Path,
             monkeypatch: pytest.MonkeyPatch) -> ToolRegistry:
    monkeypatch.setenv("SHOP_TOKEN", "tok-123")
    guard = HostGuard(configured=["127.0.0.1"], explicit=["127.0.0.1"])
    return ToolRegistry(openapi_tools([_config(shop[0], str(spec_file))], guard))


def test_allow_listed_operations_become_tools(registry: ToolRegistry) -> None:
    names = [s.name for s in registry.specs()]
    assert names == ["shop.bounce", "shop.create_credit", "shop.get_account"]  # not delete
    credit = registry.spec("shop.create_credit")
    assert credit.side_effects and credit.function == "finance" and credit.risk == "medium"
    assert set(credit.parameters["properties"]) == {"account_id", "amount", "currency"}
    assert credit.targets == ("account_id",)
    assert registry.source_of("shop.create_credit") == "openapi:shop"
    read = registry.spec("shop.get_account")
    assert not read.side_effects and read.risk == "low"
    with pytest.raises(ToolArgumentsError) as exc:
        registry.validate("shop.create_credit", {"account_id": "A-1", "currency": "EUR"})
    assert exc.value.field == "amount"


def test_mutating_calls_carry_the_key_and_the_credential(registry: ToolRegistry,
                                                         shop: tuple[str, Any]) -> None:
    _, app = shop
    receipt = registry.call("shop.create_credit", {"account_id": "A 1", "amount": 20,
                                                   "currency": "EUR"}, idempotency_key="idem-77")
    assert receipt.result == {"credit_id": "CR-A 1", "amount": 20}
    read = registry.call("shop.get_account", {"account_id": "A-1", "expand": True},
                         idempotency_key="idem-78")
    assert read.result == {"account_id": "A-1", "expand": True}
    post, get = app.state.requests
    assert post["method"] == "POST" and post["path"] == "/accounts/A 1/credits"
    assert post["headers"]["idempotency-key"] == "idem-77"
    assert post["headers"]["authorization"] == "Bearer tok-123"
    assert json.loads(post["body"]) == {"amount": 20, "currency": "EUR"}
    assert "idempotency-key" not in get["headers"] and get["query"] == {"expand": "true"}


def test_a_busy_service_is_retryable_and_redirects_are_not_followed(
        registry: ToolRegistry, shop: tuple[str, Any]) -> None:
    _, app = shop
    app.state.fail_next = 1
    with pytest.raises(ToolCallError) as busy:
        registry.call("shop.get_account", {"account_id": "A-1"}, idempotency_key="k1")
    assert busy.value.retryable and "503" in busy.value.message
    with pytest.raises(ToolCallError) as bounced:
        registry.call("shop.bounce", {}, idempotency_key="k2")
    assert not bounced.value.retryable and "redirect" in bounced.value.message


def test_the_host_guard_refuses_internal_and_unlisted_hosts(shop: tuple[str, Any],
                                                           spec_file: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "tok")
    base, app = shop
    # Configured as a base URL, but an internal address: refused unless named in tool_hosts.
    settings = Settings(openapi_tools=[_config(base, str(spec_file))])
    registry = ToolRegistry(openapi_tools(settings.openapi_tools, host_guard(settings)))
    with pytest.raises(ToolCallError) as internal:
        registry.call("shop.get_account", {"account_id": "A"}, idempotency_key="k")
    assert "internal address" in internal.value.message and not internal.value.retryable
    assert app.state.requests == []
    guard = HostGuard(configured=["api.example.com"], explicit=[])
    for url in ("http://169.254.169.254/latest", "http://evil.example.org/", "file:///etc/passwd",
                "http://[::ffff:127.0.0.1]/"):
        with pytest.raises(ToolCallError):
            guard.check(url)


@pytest.mark.parametrize("address", ["100.100.100.200", "100.64.0.7", "2002:a9fe:a9fe::1",
                                     "192.0.0.170"])
def test_a_name_resolving_to_any_non_public_address_is_refused(
        address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Shared address space (100.64.0.0/10: Alibaba Cloud's metadata service sits at
    # 100.100.100.200) and 6to4 wrappings of internal IPv4 addresses are not the internet.
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (family, socket.SOCK_STREAM, 6, "", (address, 443))])
    guard = HostGuard(configured=["api.example.com"], explicit=[])
    with pytest.raises(ToolCallError, match="internal address"):
        guard.check("https://api.example.com/v1/orders")


def test_an_echoed_credential_never_reaches_the_error(shop: tuple[str, Any],
                                                     registry: ToolRegistry) -> None:
    _, app = shop
    app.state.fail_next = 1
    app.state.echo = True
    try:
        with pytest.raises(ToolCallError) as busy:
            registry.call("shop.get_account", {"account_id": "A"}, idempotency_key="k")
    finally:
        app.state.echo = False
    assert "tok-123" not in busy.value.message and "***" in busy.value.message


def test_a_spec_by_url_goes_through_the_guard(shop: tuple[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "tok")
    base, _ = shop
    config = _config(base, f"{base}/openapi.json")
    allowed = HostGuard(configured=["127.0.0.1"], explicit=["127.0.0.1"])
    assert len(openapi_tools([config], allowed)) == 3
    with pytest.raises(ConfigError) as refused:
        openapi_tools([config], HostGuard(configured=["127.0.0.1"], explicit=[]))
    assert "openapi_tools[0] (shop).spec" in refused.value.message


@pytest.mark.parametrize(("change", "key"), [
    ({"operations": ["createCredit", "noSuchOp"]}, "operations"),
    ({"auth_env": "SHOP_TOKEN_MISSING"}, "auth_env"),
])
def test_bad_config_names_the_key(change: dict[str, Any], key: str, shop: tuple[str, Any],
                                  spec_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "tok")
    guard = HostGuard(configured=["127.0.0.1"], explicit=["127.0.0.1"])
    with pytest.raises(ConfigError) as exc:
        openapi_tools([_config(shop[0], str(spec_file), **change)], guard)
    assert f"openapi_tools[0] (shop).{key}" in exc.value.message


def test_auth_header_needs_its_env_var() -> None:
    with pytest.raises(ValueError, match="auth_env"):
        OpenApiToolsConfig.model_validate({"name": "x", "spec": "s.json",
                                           "base_url": "https://x", "function": "finance",
                                           "operations": ["a"], "auth_header": "Authorization"})


def test_a_request_connects_to_the_address_that_was_checked(
        shop: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: a name that resolves to an admitted address when checked and to
    # another one a moment later. The connection goes to the checked address (the name
    # is resolved once per request), and the server still sees the name as its Host.
    base, _app = shop
    port = httpx.URL(base).port
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["10.255.255.1"] * 10)

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "shop.rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    guard = HostGuard(configured=["shop.rebind.test"], explicit=["shop.rebind.test"])
    seen: list[str] = []
    with guard.client(timeout=5, event_hooks={"request": [
            lambda r: seen.append(r.headers["host"])]}) as client:
        response = client.get(f"http://shop.rebind.test:{port}/openapi.json")
    assert response.status_code == 200
    assert seen == [f"shop.rebind.test:{port}"]
    assert next(answers) == "10.255.255.1"  # resolved once: the second answer unused


def test_the_async_client_pins_and_refuses_the_same_way(
        shop: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    base, _app = shop
    guard = HostGuard(configured=["127.0.0.1", "api.example.com"], explicit=["127.0.0.1"])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))])

    async def run() -> tuple[int, str]:
        async with guard.async_client(timeout=5) as client:
            ok = await client.get(f"{base}/openapi.json")
            with pytest.raises(ToolCallError) as refused:
                await client.get("http://api.example.com/latest/meta-data")
            return ok.status_code, refused.value.message

    status, message = asyncio.run(run())
    assert status == 200 and "internal address 169.254.169.254" in message


def test_an_operation_previews_with_a_declared_read_of_its_target(
        shop: tuple[str, Any], spec_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from decisionops.agent.models import Step
    from decisionops.agent.preview import drift, read_preview

    monkeypatch.setenv("SHOP_TOKEN", "tok-123")
    base, app = shop
    config = _config(base, str(spec_file), previews={
        "createCredit": {"tool": "getAccount", "arguments": {"account_id": "account_id"},
                         "watch": ["credits"]}})
    registry = ToolRegistry(openapi_tools([config], HostGuard(configured=["127.0.0.1"],
                                                              explicit=["127.0.0.1"])))
    spec = registry.spec("shop.create_credit").preview
    assert spec is not None and spec.tool == "shop.get_account"
    step = Step(id="c", function="finance", tool="shop.create_credit",
                arguments={"account_id": "P-1", "amount": 5, "currency": "EUR"})
    registry.call("shop.create_credit", {"account_id": "P-1", "amount": 10, "currency": "EUR"},
                  idempotency_key="k-1")
    seen = read_preview(registry, step)
    assert seen == {"tool": "shop.get_account",
                    "result": {"account_id": "P-1", "expand": False, "credits": 10.0}}
    posts = [r for r in app.state.requests if r["method"] == "POST"]
    assert len(posts) == 1  # the preview is a GET: it changed nothing
    assert drift(spec, seen, read_preview(registry, step)) is None
    registry.call("shop.create_credit", {"account_id": "P-1", "amount": 7, "currency": "EUR"},
                  idempotency_key="k-2")
    assert drift(spec, seen, read_preview(registry, step)) == "credits was 10.0, is 17.0"
    # Found in a black-box trial: such a preview (a plain read, no summary, no
    # before/after) crashed `decisions show` and showed approvers an empty "would change".
    from decisionops.agent.preview import preview_rows, preview_summary

    assert preview_summary(seen["result"]) == "account_id: P-1; expand: False; credits: 10.0"
    assert preview_rows(seen["result"])[-1] == ("credits", 10.0, "")


def test_a_preview_must_be_a_listed_read(shop: tuple[str, Any], spec_file: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("SHOP_TOKEN", "tok-123")
    from decisionops.agent.errors import ConfigError
    with pytest.raises(ValidationError, match=r"previews\.createCredit"):
        _config(shop[0], str(spec_file), previews={"createCredit": {"tool": "listAll"}})
    # a misspelt operation in targets would leave its target unlocked (trial 18)
    with pytest.raises(ValidationError, match=r"targets\.createCredt: the operation"):
        _config(shop[0], str(spec_file), targets={"createCredt": ["account_id"]})
    config = _config(shop[0], str(spec_file), operations=["createCredit", "getAccount", "bounce"],
                     previews={"createCredit": {"tool": "bounce"}})
    with pytest.raises(ConfigError, match=r"preview 'shop\.bounce' is not a registered read-only"):
        ToolRegistry(openapi_tools([config], HostGuard(configured=["127.0.0.1"],
                                                       explicit=["127.0.0.1"])))
