"""What the app holds while it runs (``app.state.service``) and the FastAPI dependencies
that hand it to routes: the runtime, the settings, the session signer, the chat
service, and the caller's ``Principal``.

Built by the app's lifespan (``_app``); nothing here exists at import time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates

from decisionops.agent.api._auth import (
    SESSION_COOKIE,
    Permission,
    Principal,
    SessionSigner,
    Unauthenticated,
    csrf_ok,
    principal_from_token,
)
from decisionops.agent.api._settings import ServiceSettings
from decisionops.agent.errors import DecisionOpsError, LoopAlreadyRunning, PermissionDenied
from decisionops.agent.looplock import LoopLock
from decisionops.agent.runtime import Runtime

__all__ = ["BackgroundWorker", "ServiceState", "get_state", "principal_dependency", "requires"]

log = logging.getLogger("decisionops.api")

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class BackgroundWorker:
    """The loop of ``decisionops serve``: the same ``Worker`` loop as ``decisionops run``
    (one per process), in a thread; an answer recorded by a request wakes it at once.
    Requests never run the graph or take a decision's lease themselves."""

    def __init__(self, runtime: Runtime, interval: float) -> None:
        from decisionops.agent.housekeeping import default_housekeeping
        from decisionops.agent.worker import Worker

        self.worker = Worker(runtime, poll_seconds=interval,
                             housekeeping=default_housekeeping(runtime.settings))
        self._lock = LoopLock(runtime.settings, "serve")
        self._thread = threading.Thread(target=self._loop, name="decisionops-worker",
                                        daemon=True)

    def start(self) -> None:
        """Start the loop; ``LoopAlreadyRunning`` if another process runs it on this
        SQLite folder (``agent.looplock``)."""
        try:
            self._lock.acquire()
        except LoopAlreadyRunning:
            self.worker.close()
            raise
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and let the legs in hand finish before the runtime closes (a
        model call cut off by the closing runtime would end in a fallback plan)."""
        self.worker.stop()
        self._thread.join(timeout=30)
        self.worker.close()
        self._lock.release()

    def _loop(self) -> None:
        while not self.worker.stopping.is_set():
            try:
                self.worker.run(on_tick=_log_errors)
            except DecisionOpsError as exc:
                log.warning("worker pass failed: %s", exc.message)
            except Exception:  # the loop must outlive one bad pass; the traceback is logged
                log.exception("worker pass failed")
                self.worker.stopping.wait(1.0)


def _log_errors(report: Any) -> None:
    for error in report.errors:
        log.warning("worker: %s", error)


@dataclass
class ServiceState:
    runtime: Runtime
    settings: ServiceSettings
    signer: SessionSigner
    templates: Jinja2Templates
    chat: Any
    """``agent.chat.ChatService``."""
    extras: dict[str, Any] = field(default_factory=dict)


def get_state(request: Request) -> ServiceState:
    return request.app.state.service  # type: ignore[no-any-return]


def principal_dependency() -> Callable[..., Principal]:
    """The caller, from ``Authorization: Bearer`` or the web session cookie (which must
    carry the CSRF header on unsafe methods)."""
    bearer = HTTPBearer(auto_error=False, description="API token from 'decisionops users add'")

    def principal(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                  state: ServiceState = Depends(get_state)) -> Principal:
        store = state.runtime.store
        if credentials is not None:
            if credentials.scheme.lower() != "bearer":
                raise Unauthenticated()
            return principal_from_token(store, credentials.credentials.strip())
        if request.headers.get("authorization"):
            raise Unauthenticated()
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            found = state.signer.principal(store, cookie)
            if request.method not in _SAFE_METHODS and not csrf_ok(
                    found.csrf, request.headers.get("x-csrf-token")):
                raise PermissionDenied("missing or wrong CSRF token (X-CSRF-Token)",
                                       reason="csrf")
            return found
        raise Unauthenticated()

    return principal


def requires(principal: Callable[..., Principal], permission: Permission
             ) -> Callable[..., Principal]:
    def check(who: Principal = Depends(principal)) -> Principal:
        who.require(permission)
        return who

    return check
