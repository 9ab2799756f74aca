"""Error bodies: every refusal is ``{"error": {"code", "message", "field"?, "reason"?,
"problems"?}}`` with the right 4xx status.

Our ``UsageError`` family maps onto statuses (invalid input 422, not found 404, conflict
409, permission 403); request-validation problems name the field and never echo the
value sent; anything unexpected is a 500 whose body says only that, with a request id
to find the traceback in the server log. No stack trace and no secret reaches a body.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from decisionops.agent.api._auth import Unauthenticated
from decisionops.agent.errors import (
    DecisionOpsError,
    cannot_write,
    error_body,
    error_fields,
    pydantic_message,
    status_for,
)

__all__ = ["install_error_handlers"]

log = logging.getLogger("decisionops.api")


def _field(loc: tuple[Any, ...] | list[Any]) -> tuple[str | None, str]:
    parts = list(loc)
    where = str(parts.pop(0)) if parts and parts[0] in ("body", "query", "path", "header",
                                                          "cookie") else "body"
    return (".".join(str(p) for p in parts) or None), where


async def _usage(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DecisionOpsError)
    status = status_for(exc)
    if status >= 500:
        log.error("request failed: %s", exc.message)
    return JSONResponse(error_body(status, exc.message, **error_fields(exc)),
                        status_code=status)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent and sent != "application/json" and not sent.endswith("+json") and any(
            (err.get("loc") or ("",))[0] == "body" for err in exc.errors()):
        # A body the route reads as JSON arrived as something else (a CSV file posted
        # as it is): say what to send, not that a dictionary was expected.
        return JSONResponse(error_body(
            422, f"body: send JSON (Content-Type: application/json), not {sent}; a CSV or "
            "Parquet file goes through 'decisionops ingest' or a drop folder", field="body"),
            status_code=422)
    problems = []
    for err in exc.errors()[:20]:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error")
            return JSONResponse(error_body(422, "body is not valid JSON"
                                           + (f": {detail}" if detail else ""), field="body"),
                                status_code=422)
        field, where = _field(err.get("loc", ()))
        problems.append({"field": field, "location": where, "message": pydantic_message(err)})
    first = problems[0] if problems else {"field": None, "message": "invalid request"}
    message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return JSONResponse(error_body(422, message, field=first["field"], problems=problems),
                        status_code=422)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _unauthenticated(_request: Request, exc: Exception) -> JSONResponse:
    # A bad webhook signature says why (nothing secret in it); a bad token never does.
    message = getattr(exc, "message", None) or ("a valid API token is required "
                                               "(Authorization: Bearer <token>)")
    return JSONResponse(error_body(401, message), status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    if (said := cannot_write(exc)) is not None:  # as the CLI says it
        log.error("a write was refused: %s", said)
        return JSONResponse(error_body(503, said), status_code=503)
    incident = secrets.token_hex(6)
    log.error("unexpected error (incident %s)", incident, exc_info=exc)
    return JSONResponse(error_body(500, f"internal error (incident {incident}); "
                                        "see the server log"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DecisionOpsError, _usage)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Unauthenticated, _unauthenticated)
    app.add_exception_handler(Exception, _unexpected)
