"""Bounds on what a request may carry, enforced before anything parses it.

``BodyLimitMiddleware`` answers 413 when ``Content-Length`` is over the route's limit
without reading the body, and otherwise buffers at most the limit (a chunked body that
grows past it gets 413 too), so memory per request is bounded. ``StrictJSONRoute``
parses JSON bodies refusing ``NaN``/``Infinity`` (Python's ``json`` accepts them and
every comparison with NaN is false) and bounding nesting depth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from decisionops.agent.errors import error_body

__all__ = ["BodyLimitMiddleware", "StrictJSONRoute", "strict_loads"]

MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _depth_ok(text: bytes | str) -> bool:
    """Cheap pre-scan: nesting deeper than ``MAX_DEPTH`` is refused before parsing."""
    depth = 0
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
            continue
        if byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def strict_loads(body: bytes | str) -> Any:
    """``json.loads`` without NaN/Infinity and with bounded nesting; raises
    ``json.JSONDecodeError`` (or ``ValueError``) on bad input."""
    if not _depth_ok(body):
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", "", 0)
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), "", 0) from None


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await original(_StrictRequest(request.scope, request.receive))

        return handler


class BodyLimitMiddleware:
    """413 for bodies over ``default`` bytes, or over ``larger`` on ``larger_prefixes``."""

    def __init__(self, app: ASGIApp, *, default: int, larger: int,
                 larger_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.default = default
        self.larger = larger
        self.larger_prefixes = larger_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.larger if path.startswith(self.larger_prefixes) else self.default
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                length = value
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "Content-Length must be a number")
                return
            if int(length) > limit:
                await _reply(send, 413, f"request body is over the limit of {limit} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _reply(send, 413, f"request body is over the limit of {limit} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reply(send: Send, status: int, message: str) -> None:
    payload = json.dumps(error_body(status, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
