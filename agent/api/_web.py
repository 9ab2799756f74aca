"""The web inbox: server-rendered pages (Jinja2, autoescaped) that work without external
network and without JavaScript; small vanilla scripts add edit validation (through the
API) and the chat panel.

An approver logs in with a token; the session cookie is ``HttpOnly``, ``SameSite=Strict``
and signed. Forms carry a CSRF token: the login form a double-submit cookie, every
other form the session's secret. Answers go to the approval service, like the API's.
"""

from __future__ import annotations

import secrets
from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from decisionops.agent.api._approvals import approver, submit_answer
from decisionops.agent.api._auth import (
    SESSION_COOKIE,
    Principal,
    Unauthenticated,
    csrf_ok,
    principal_from_token,
)
from decisionops.agent.api._evidence import approval_view, decision_view, inbox, waiting
from decisionops.agent.api._state import ServiceState, get_state
from decisionops.agent.approvals import BulkItem
from decisionops.agent.errors import (
    DecisionOpsError,
    InvalidInputError,
    pydantic_message,
    status_for,
)
from decisionops.agent.models import Approve, Edit, Reject, Revise

__all__ = ["web_router"]

LOGIN_CSRF = "dops_login_csrf"
_INBOX_PAGE = 200
"""The inbox shows the most urgent this many pending requests (and says how many wait)."""
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _session(request: Request, state: ServiceState) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        return state.signer.principal(state.runtime.store, cookie)
    except Unauthenticated:
        return None


_BOOLEANS = {"true": True, "false": False}
"""What a true/false field of the edit form takes, as the API's JSON and the CLI's
``--set`` do (trial 23: any other text was False; trial 24: "yes" was true here only)."""


def _parse_value(raw: str, original: Any) -> Any:
    """A form field back to the type of the proposed value (bad numbers stay text, and
    the validation names them)."""
    if isinstance(original, bool):  # anything else is refused naming it, as over the API
        return _BOOLEANS.get(raw.strip().lower(), raw)
    if isinstance(original, int | float):
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(number) if isinstance(original, int) and number.is_integer() else number
    return raw


def _edited(form: Any, request_steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The changes the edit form asks for. A field naming a step or an argument the
    request does not have is passed on as sent, for the approval service to refuse as it
    refuses it from the API and the CLI (never dropped without a word)."""
    proposed = {step["id"]: step["arguments"] for step in request_steps}
    changes: dict[str, dict[str, Any]] = {}
    for key in form:
        if not key.startswith("arg."):
            continue
        step_id, _, name = key.removeprefix("arg.").partition(".")
        original = proposed.get(step_id, {}).get(name)
        value = _parse_value(str(form.get(key)), original)
        if step_id not in proposed or name not in proposed[step_id] or value != original:
            changes.setdefault(step_id, {})[name] = value
    return changes


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200
             ) -> Response:
        state = get_state(request)
        response = state.templates.TemplateResponse(request, name, context, status_code=status)
        return _secure_headers(response)

    def to_login(request: Request) -> Response:
        # After the login, a GET of ``next``: a form posted without a session comes back to
        # its page (the request page's answer form posts to the page itself; bulk approve
        # has no page of its own: the inbox).
        path = request.url.path
        if request.method != "GET" and not path.startswith("/inbox/requests/"):
            path = "/inbox"
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)

    @router.get("/")
    def root() -> Response:
        return RedirectResponse("/inbox", status_code=303)

    @router.get("/login")
    def login_form(request: Request, next: str = "/inbox") -> Response:
        token = secrets.token_urlsafe(24)
        response = page(request, "login.html", {"csrf": token, "next": _safe_next(next),
                                                "error": None, "who": None})
        response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                            secure=get_state(request).settings.cookie_secure, path="/login")
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        state = get_state(request)
        form = await request.form()
        next_url = _safe_next(str(form.get("next") or "/inbox"))
        if not csrf_ok(request.cookies.get(LOGIN_CSRF), str(form.get("csrf_token") or "")):
            return page(request, "login.html", {"csrf": "", "next": next_url, "who": None,
                                                "error": "The form expired; reload the page."}, 403)
        try:
            who = await run_in_threadpool(principal_from_token, state.runtime.store,
                                          str(form.get("token") or "").strip())
        except Unauthenticated:
            token = secrets.token_urlsafe(24)
            response = page(request, "login.html", {
                "csrf": token, "next": next_url, "who": None,
                "error": "That token is not valid (revoked, expired or mistyped)."}, 401)
            response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                                secure=state.settings.cookie_secure, path="/login")
            return response
        cookie, _csrf = state.signer.issue(who.token_id)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=state.signer.max_age, httponly=True,
                            samesite="strict", secure=state.settings.cookie_secure, path="/")
        response.delete_cookie(LOGIN_CSRF, path="/login")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        state = get_state(request)
        who = _session(request, state)
        form = await request.form()
        if who is not None and not csrf_ok(who.csrf, str(form.get("csrf_token") or "")):
            return Response("CSRF token missing or wrong", status_code=403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def inbox_view(request: Request, state: ServiceState, who: Principal, *,
                   answered: str | None = None, results: list[dict[str, Any]] | None = None,
                   error: str | None = None, status: int = 200) -> Response:
        rows = inbox(state.runtime, who, limit=_INBOX_PAGE)
        bulk = any(r["not_for_bulk"] is None for r in rows) and who.may("answer")
        return page(request, "inbox.html", {"who": who, "rows": rows, "bulk": bulk,
                                            "waiting": waiting(state.runtime, who),
                                            "answered": answered, "results": results,
                                            "error": error}, status)

    @router.get("/inbox")
    def inbox_page(request: Request, answered: str | None = None) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        return inbox_view(request, state, who, answered=_known_status(answered))

    @router.post("/inbox/bulk-approve")
    async def bulk_approve(request: Request) -> Response:
        """Approve the selected requests: one call to the approval service, which answers
        each in turn and says, per request, approved or refused and why."""
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        form = await request.form()
        if not csrf_ok(who.csrf, str(form.get("csrf_token") or "")):
            return await run_in_threadpool(partial(
                inbox_view, request, state, who, error="The form expired; reload the page.",
                status=403))
        # A missing hash binds to no plan and is refused as stale, as on the single form.
        items = [BulkItem(str(a), str(form.get(f"plan_hash.{a}") or ""))
                 for a in form.getlist("approval")]
        rt = state.runtime
        comment = str(form.get("comment") or "")
        try:  # as long as on every channel: refused, not cut short (trial 24)
            Approve(comment=comment)
        except ValidationError as exc:
            return await run_in_threadpool(partial(
                inbox_view, request, state, who, status=422,
                error=f"comment: {pydantic_message(exc.errors(include_url=False)[0])}"))
        try:
            outcomes = await run_in_threadpool(partial(
                rt.approvals.approve_many, items, by=approver(who, "web"), comment=comment))
        except DecisionOpsError as exc:
            field = exc.details.get("field")
            return await run_in_threadpool(partial(
                inbox_view, request, state, who, status=status_for(exc),
                error=f"{field}: {exc.message}" if field else exc.message))
        results = [{"approval_id": o.approval_id, "status": o.status, "reason": o.reason,
                    "message": o.message, "decision_id": o.decision_id} for o in outcomes]
        return await run_in_threadpool(partial(inbox_view, request, state, who,
                                               results=results))

    @router.get("/inbox/{approval_id}")
    def old_approval_link(approval_id: str) -> Response:
        """Links sent before requests had their own path keep working."""
        return RedirectResponse(f"/inbox/requests/{quote(approval_id, safe='')}", status_code=308)

    @router.get("/inbox/requests/{approval_id}")
    def approval_page(request: Request, approval_id: str, answered: str | None = None
                      ) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        return _approval(request, state, who, approval_id, error=None,
                         answered=_known_status(answered))

    def _approval(request: Request, state: ServiceState, who: Principal, approval_id: str,
                  *, error: str | None, status: int = 200, answered: str | None = None
                  ) -> Response:
        try:
            view = approval_view(state.runtime, who, approval_id)
        except DecisionOpsError as exc:
            return page(request, "error.html", {"who": who, "message": exc.message}, 404)
        order = [r["id"] for r in inbox(state.runtime, who, limit=_INBOX_PAGE)]
        here = order.index(approval_id) if approval_id in order else -1
        pager = {"prev": order[here - 1] if here > 0 else None,
                 "next": order[here + 1] if 0 <= here < len(order) - 1 else None,
                 "position": here + 1, "total": len(order)}
        return page(request, "approval.html", {"who": who, "v": view, "error": error,
                                               "pager": pager, "answered": answered}, status)

    @router.post("/inbox/requests/{approval_id}")
    @router.post("/inbox/{approval_id}")
    async def answer(request: Request, approval_id: str) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        form = await request.form()
        if not csrf_ok(who.csrf, str(form.get("csrf_token") or "")):
            return await run_in_threadpool(_approval, request, state, who, approval_id,
                                           error="The form expired; reload the page.",
                                           status=403)
        action = str(form.get("action") or "")
        plan_hash = str(form.get("plan_hash") or "")
        comment = str(form.get("comment") or "")  # too long: refused below, as elsewhere
        try:
            row = await run_in_threadpool(state.runtime.store.approvals.get, approval_id)
            if action == "approve":
                answer: Any = Approve(comment=comment)
            elif action == "edit":
                answer = Edit(arguments=_edited(form, [s.model_dump() for s in row.request.steps]),
                              comment=comment)
            elif action == "reject":
                answer = Reject(reason=str(form.get("reason") or ""))
            elif action == "revise":
                answer = Revise(feedback=str(form.get("feedback") or ""))
            else:
                raise InvalidInputError(f"unknown action {action!r}", field="action")
            before = [r["id"] for r in await run_in_threadpool(partial(
                inbox, state.runtime, who, limit=_INBOX_PAGE))] \
                if form.get("then") == "next" else None
            out = await run_in_threadpool(partial(
                submit_answer, state.runtime, who, approval_id, answer, plan_hash, channel="web",
                # absent: bind to what is stored; sent, it must be a hash (as over the API)
                preview_hash=(str(form["preview_hash"]) if "preview_hash" in form else None),
                proposal_hash=(str(form["proposal_hash"]) if "proposal_hash" in form
                               else None)))
        except DecisionOpsError as exc:
            return await run_in_threadpool(_approval, request, state, who, approval_id,
                                           error=exc.message, status=status_for(exc))
        except ValidationError as exc:  # a malformed edit (step or argument names)
            err = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"])
            return await run_in_threadpool(_approval, request, state, who, approval_id,
                                           error=f"{field}: {pydantic_message(err)}", status=422)
        if before is not None:  # approve-and-next: the next request still waiting
            after = {r["id"] for r in await run_in_threadpool(partial(
                inbox, state.runtime, who, limit=_INBOX_PAGE))}
            here = before.index(approval_id) + 1 if approval_id in before else 0
            following = [a for a in before[here:] + before[:here] if a in after]
            target = (f"/inbox/requests/{quote(following[0], safe='')}" if following
                      else "/inbox")
            return RedirectResponse(f"{target}?answered={out['status']}", status_code=303)
        return RedirectResponse(f"/decisions/{out['decision_id']}?answered={out['status']}",
                                status_code=303)

    @router.get("/decisions/{decision_id}")
    def decision_page(request: Request, decision_id: str, answered: str | None = None
                      ) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        try:
            view = decision_view(state.runtime, who, decision_id)
        except DecisionOpsError as exc:
            return page(request, "error.html", {"who": who, "message": exc.message}, 404)
        return page(request, "decision.html", {"who": who, "v": view, "answered": answered})

    @router.get("/chat")
    def chat_page(request: Request) -> Response:
        state = get_state(request)
        who = _session(request, state)
        if who is None:
            return to_login(request)
        return page(request, "chat.html", {"who": who, "mode": state.chat.mode})

    return router


def _known_status(value: str | None) -> str | None:
    """A status echoed from the query string, only if it is one an answer records."""
    known = {"approved", "edited", "rejected", "revise", "proposed"}
    return value if value in known else None


def _safe_next(value: str) -> str:
    """Only local paths: no open redirect. Browsers drop tabs and newlines from a URL and
    read a backslash as a slash, so ``/\t/evil.example`` would be ``//evil.example``: any
    control character, space or backslash refuses the value."""
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)):
        return "/inbox"
    return value
