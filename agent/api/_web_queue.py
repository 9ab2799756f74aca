"""The web inbox's "needs a human" page: predictions the loop could not plan, each with
its reason, and a form per prediction to pick a playbook, plan it by hand (the steps as
YAML or JSON text), supply the value at stake, or dismiss. Answers go to
``agent.prediction_queue`` as the logged-in user, like the API's; the forms carry the
session's CSRF token. Without JavaScript.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from decisionops.agent.api._auth import Principal, csrf_ok
from decisionops.agent.api._state import ServiceState, get_state
from decisionops.agent.api._web import _secure_headers, _session
from decisionops.agent.errors import (
    DecisionOpsError,
    InvalidInputError,
    NotFoundError,
    PermissionDenied,
)
from decisionops.agent.prediction_queue import ANSWERING_ROLES, QueueUser

__all__ = ["web_queue_router"]


def _value(raw: str) -> float:
    try:
        return float(raw.replace(",", "").strip())
    except ValueError:
        raise InvalidInputError(f"{raw!r} is not a number", field="value_at_stake") from None


def web_queue_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(request: Request, state: ServiceState, who: Principal, *,
               error: str | None = None, done: str | None = None, status: int = 200,
               draft: tuple[str, str] | None = None) -> Response:
        """``draft``: (prediction id, steps text) of a refused hand plan, given back."""
        rt = state.runtime
        answered = None
        if done:  # what the answer did (trial 25: "Answered X." of any X, whatever it did)
            try:
                answered = rt.store.prediction_views.get(done)
            except NotFoundError:
                answered = None
        context: dict[str, Any] = {
            "who": who, "rows": rt.queue.list(limit=200), "error": error, "done": answered,
            "playbooks": sorted(rt.playbooks.playbooks),
            "can_answer": who.role in ANSWERING_ROLES, "draft": draft}
        response = state.templates.TemplateResponse(request, "queue.html", context,
                                                     status_code=status)
        return _secure_headers(response)

    def refused(request: Request, state: ServiceState, who: Principal) -> Response:
        """Not for a credential that does not read predictions (as the API's ``read``)."""
        response = state.templates.TemplateResponse(request, "error.html", {
            "who": who, "message": f"{who.name} ({who.role}) does not read predictions"},
            status_code=403)
        return _secure_headers(response)

    @router.get("/queue")
    def queue_page(request: Request, done: str | None = None) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return RedirectResponse("/login?next=/queue", status_code=303)
        if not who.may("read"):
            return refused(request, state, who)
        return render(request, state, who, done=done)

    @router.post("/queue/{prediction_id:path}")
    async def answer(request: Request, prediction_id: str) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return RedirectResponse("/login?next=/queue", status_code=303)
        if not who.may("read"):
            return refused(request, state, who)
        form = await request.form()
        if not csrf_ok(who.csrf, str(form.get("csrf_token") or "")):
            return await run_in_threadpool(render, request, state, who, status=403,
                                           error="The form expired; reload the page.")
        queue, by = state.runtime.queue, QueueUser(who.name, who.role, "web")
        action = str(form.get("action") or "")
        try:
            if action == "pick":
                call: Any = partial(queue.pick, prediction_id, str(form.get("playbook") or ""),
                                    by=by, note=str(form.get("note") or ""))
            elif action == "plan":
                call = partial(queue.plan_by_hand, prediction_id, str(form.get("steps") or ""),
                               by=by, note=str(form.get("note") or ""))
            elif action == "value":
                call = partial(queue.supply_value, prediction_id,
                               _value(str(form.get("value_at_stake") or "")), by=by)
            elif action == "dismiss":
                call = partial(queue.dismiss, prediction_id,
                               str(form.get("reason") or ""), by=by)
            else:
                raise InvalidInputError(f"unknown action {action!r}", field="action")
            await run_in_threadpool(call)
        except DecisionOpsError as exc:
            status = (403 if isinstance(exc, PermissionDenied)
                      else 422 if isinstance(exc, InvalidInputError) else 409)
            draft = ((prediction_id, str(form.get("steps") or ""))
                     if action == "plan" else None)
            return await run_in_threadpool(render, request, state, who, status=status,
                                           error=f"{prediction_id}: {exc.message}",
                                           draft=draft)
        return RedirectResponse(f"/queue?done={quote(prediction_id)}", status_code=303)

    return router
