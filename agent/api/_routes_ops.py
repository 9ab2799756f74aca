"""Health, the caller's identity, holds, and the ops chat over HTTP."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from decisionops.agent.api._auth import Principal
from decisionops.agent.api._limits import StrictJSONRoute
from decisionops.agent.api._schemas import ChatIn, ChatOut, ChatRefusal
from decisionops.agent.api._state import ServiceState, get_state, requires
from decisionops.agent.chat import ChatUser
from decisionops.agent.errors import error_body

__all__ = ["ops_router"]


def chat_user(who: Principal) -> ChatUser:
    return ChatUser(who.name, who.role, who.functions)


def _read_only(engine: Any) -> str | None:
    """Why a SQLite store cannot be written (its file, or the folder its journal goes
    to, is not this process's to write: a read-only volume), or None (trial 32: ready
    while every answer failed). PostgreSQL's own readiness is the server's."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    database = engine.url.database
    for path in (database, os.path.dirname(database) or "."):
        if os.path.exists(path) and not os.access(path, os.W_OK):
            return (f"the store is read-only ({path} cannot be written): answers, intake "
                    "and the loop's writes fail")
    return None


def ops_router(principal: Any) -> APIRouter:
    router = APIRouter(route_class=StrictJSONRoute)
    chatter = requires(principal, "chat")

    @router.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", tags=["health"], summary="Readiness: the store answers",
                responses={503: {"description": "the store is unreachable"}})
    def readyz(state: ServiceState = Depends(get_state)) -> Any:
        try:
            with state.runtime.store.reading() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return JSONResponse(error_body(503, "the store is not reachable"), 503)
        if (read_only := _read_only(state.runtime.store.engine)) is not None:
            return JSONResponse(error_body(503, read_only), 503)
        return {"status": "ready"}

    @router.get("/metrics", tags=["health"], summary="Prometheus metrics of this process",
                response_class=PlainTextResponse)
    def metrics(state: ServiceState = Depends(get_state)) -> PlainTextResponse:
        # Counts and gauges only (no identifiers, arguments or secrets); scrape from the
        # private network like /healthz.
        return PlainTextResponse(generate_latest(state.runtime.metrics.registry).decode(),
                                 media_type=CONTENT_TYPE_LATEST)

    @router.get("/v1/me", tags=["auth"], summary="Who the credential belongs to")
    def me(who: Principal = Depends(principal)) -> dict[str, Any]:
        return {"name": who.name, "role": who.role, "functions": list(who.functions),
                "token_id": who.token_id}

    @router.get("/v1/holds", tags=["ops"],
                summary="Active holds (entities, playbooks and business functions)")
    def holds(_who: Principal = Depends(requires(principal, "read")),
              state: ServiceState = Depends(get_state)) -> list[dict[str, Any]]:
        return [h.to_dict() for h in state.runtime.store.holds.list()]

    @router.post("/v1/chat", tags=["chat"], response_model=ChatOut,
                 summary="Send one message to the ops chat")
    def chat(body: ChatIn, who: Principal = Depends(chatter),
             state: ServiceState = Depends(get_state)) -> ChatOut:
        """Commands (``help``) work without an LLM; natural language needs one. Chat can
        never approve."""
        reply = state.chat.reply(chat_user(who), body.message)
        return ChatOut(reply=reply.reply, conversation_id=reply.conversation_id,
                       mode=reply.mode, refused=[ChatRefusal(**r) for r in reply.refused])

    @router.get("/v1/chat", tags=["chat"], summary="The caller's conversation")
    def chat_history(who: Principal = Depends(chatter),
                     state: ServiceState = Depends(get_state)) -> dict[str, Any]:
        return state.chat.history(chat_user(who))  # type: ignore[no-any-return]

    return router
