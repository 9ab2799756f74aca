"""``Http``: an arena's HTTP service as its users reach it: the JSON API with a bearer
token, the LangChain human-in-the-loop endpoint, the web inbox through its login and
forms (session cookie, CSRF token), and the ops chat."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

    from decisionops.evals.adversarial._arena import Arena

__all__ = ["Http"]

_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Http:
    def __init__(self, client: TestClient, arena: Arena) -> None:
        self.client = client
        self.arena = arena

    def _auth(self, user: str) -> dict[str, str]:
        """The user's token (an approver the policies list is registered on first use)."""
        return {"Authorization": f"Bearer {self.arena.user(user)}"}

    def get(self, path: str, user: str, **kwargs: Any) -> Response:
        return self.client.get(path, headers=self._auth(user), **kwargs)

    def post(self, path: str, user: str, body: Any = None, **kwargs: Any) -> Response:
        headers = {**self._auth(user), **kwargs.pop("headers", {})}
        return self.client.post(path, headers=headers, json=body, **kwargs)

    # ------------------------------------------------------------------ API

    def answer(self, user: str, approval_id: str, verb: str = "approve", *,
               plan_hash: str, **body: Any) -> Response:
        """``POST /v1/approvals/{id}/{verb}`` as ``user``."""
        return self.post(f"/v1/approvals/{approval_id}/{verb}", user,
                         {"plan_hash": plan_hash, **body})

    def hitl(self, user: str, approval_id: str, decisions: list[dict[str, Any]]) -> Response:
        """Read the request in LangChain's shape, then answer it with ``decisions``
        (``If-Match``: the ETag read)."""
        view = self.get(f"/v1/approvals/{approval_id}/hitl", user)
        if view.status_code != 200:
            return view
        return self.post(f"/v1/approvals/{approval_id}/hitl", user, {"decisions": decisions},
                         headers={"If-Match": view.headers["ETag"]})

    def chat(self, user: str, message: str) -> Response:
        return self.post("/v1/chat", user, {"message": message})

    # ------------------------------------------------------------------ web inbox

    def login(self, user: str) -> str:
        """Log in through the form; returns the session's CSRF secret."""
        form = self.client.get("/login")
        match = _FORM_CSRF.search(form.text)
        if match is None:
            raise AssertionError("the login form carries no CSRF token")
        done = self.client.post("/login", data={"token": self.arena.user(user),
                                                "csrf_token": match.group(1), "next": "/inbox"},
                                follow_redirects=False)
        if done.status_code != 303:
            raise AssertionError(f"login as {user} failed: {done.status_code}")
        page = self.client.get("/inbox")
        meta = _META_CSRF.search(page.text)
        if meta is None:
            raise AssertionError("the inbox page carries no CSRF token")
        return meta.group(1)

    def form(self, user: str, approval_id: str, action: str, **fields: str) -> Response:
        """Submit the inbox's answer form for ``approval_id`` as ``user`` (logged in
        first), with the plan hash the page shows."""
        csrf = self.login(user)
        page = self.client.get(f"/inbox/{approval_id}")
        match = re.search(r'name="plan_hash" value="([0-9a-f]{64})"', page.text)
        plan_hash = match.group(1) if match else self.arena.rt.store.approvals.get(
            approval_id).plan_hash  # the page shows no form to someone who may not answer
        return self.client.post(f"/inbox/{approval_id}", data={
            "csrf_token": csrf, "plan_hash": plan_hash, "action": action, **fields},
            follow_redirects=False)
