"""LangGraph server auth (``langgraph.json`` → ``auth``) for ``langgraph dev``: our API
tokens sign a LangGraph client in, as ``x-api-key: <token>`` (what ``langgraph_sdk``
sends for ``api_key=``) or ``Authorization: Bearer <token>``.

The user LangGraph records for the run is ours (identity = our user's name); answers are
still checked by the approval service when the graph resumes (``graphs.client_answers``).
Token checks read the database, so they run in a worker thread, never on the server's
event loop. LangGraph Studio's own local sign-in (``langgraph-studio-user``) stays on:
it may look and start runs, and its resumes are refused with what to send instead.
"""

from __future__ import annotations

import asyncio

from langgraph_sdk import Auth

from decisionops.agent.api._auth import Unauthenticated, principal_from_token
from decisionops.agent.errors import PermissionDenied
from decisionops.graphs.embedded import embedded

__all__ = ["auth"]

auth = Auth()


def _token(headers: dict[bytes, bytes]) -> str | None:
    key = headers.get(b"x-api-key")
    if key:
        return key.decode("latin-1").strip()
    scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _principal(token: str) -> dict[str, object]:
    who = principal_from_token(embedded().store, token)
    who.require("read")  # as the API's /langgraph routes: an ingest token reads nothing
    return {"identity": who.name, "display_name": who.name, "is_authenticated": True,
            "permissions": [], "role": who.role, "functions": list(who.functions)}


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> dict[str, object]:
    token = _token(headers)
    if token is None:
        raise Auth.exceptions.HTTPException(
            status_code=401, detail="send a DecisionOps token: x-api-key: <token> or "
                                    "Authorization: Bearer <token>")
    try:
        return await asyncio.to_thread(_principal, token)
    except Unauthenticated:
        raise Auth.exceptions.HTTPException(status_code=401, detail="invalid token") from None
    except PermissionDenied as exc:
        raise Auth.exceptions.HTTPException(status_code=403, detail=exc.message) from None
