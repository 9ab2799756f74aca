"""``create_app``: the FastAPI application factory (nothing is built at import time).

The app's lifespan builds the runtime (from ``runtime_factory``, else from ``Settings``),
the session signer, the chat service and, when ``worker_interval_seconds`` > 0, the
in-process worker loop; it closes them on shutdown. Routes get them through
dependencies on ``app.state.service``.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from decisionops.agent.api._auth import SessionSigner
from decisionops.agent.api._errors import install_error_handlers
from decisionops.agent.api._format import softwrap
from decisionops.agent.api._limits import BodyLimitMiddleware
from decisionops.agent.api._routes_approvals import approvals_router
from decisionops.agent.api._routes_autonomy import autonomy_router
from decisionops.agent.api._routes_ingest import ingest_router
from decisionops.agent.api._routes_langgraph import langgraph_router
from decisionops.agent.api._routes_ops import ops_router
from decisionops.agent.api._routes_outcomes import outcomes_router
from decisionops.agent.api._routes_predictions import predictions_router
from decisionops.agent.api._settings import ServiceSettings
from decisionops.agent.api._state import BackgroundWorker, ServiceState, principal_dependency
from decisionops.agent.api._web import web_router
from decisionops.agent.api._web_queue import web_queue_router
from decisionops.agent.chat import ChatService
from decisionops.agent.errors import ConfigError
from decisionops.agent.preview import preview_rows
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings

__all__ = ["create_app"]

_HERE = Path(str(resources.files("decisionops.agent.api")))


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["softwrap"] = softwrap
    env.globals["preview_rows"] = preview_rows
    return Jinja2Templates(env=env)


def _kept_secret(home: Path) -> str:
    """The session key of a service without ``session_secret``: made once, kept in its
    data folder (readable by its owner alone), so an approver's session and the form
    they are filling in survive a restart of ``serve`` (trial: a restart logged every
    approver out, and an answer posted then was lost to the login page). Whoever can
    read the data folder can read the store itself; production sets its own."""
    path = home / "session_secret"
    if not path.exists():  # made whole aside, then linked in: a reader never sees half
        made = home / f".session_secret.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(made, path)
        except FileExistsError:
            pass  # another process made it first: theirs stands
        finally:
            made.unlink()
    kept = path.read_text(encoding="ascii").strip()
    if len(kept) < 32:
        raise ConfigError(f"{path}: not a session key (delete it to have a new one made)",
                          field="session_secret")
    return kept


def create_app(settings: Settings | None = None, *, service: ServiceSettings | None = None,
               runtime_factory: Callable[[], Runtime] | None = None) -> FastAPI:
    """The DecisionOps HTTP service: API (``/v1``), web inbox, ops chat, health checks.

    ``runtime_factory`` builds the runtime when the app starts (tests pass their own);
    by default ``Runtime(settings)`` acting as ``api:<host>:<pid>``.
    """
    service = service or ServiceSettings()

    def default_runtime() -> Runtime:
        return Runtime(settings or Settings(), actor=f"api:{socket.gethostname()}:{os.getpid()}")

    factory = runtime_factory or default_runtime

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = factory()
        chat = None
        worker = None
        try:
            secret = service.session_secret
            if secret is None and runtime.settings.environment == "production":
                raise ConfigError("session_secret: production needs DECISIONOPS_SESSION_SECRET "
                                  "(sessions must survive restarts and be shared by replicas)",
                                  field="session_secret")
            signer = SessionSigner(secret.get_secret_value() if secret else
                                   _kept_secret(runtime.settings.home),
                                   service.session_max_age_seconds)
            chat = ChatService(runtime, runtime.settings, max_turns=service.chat_max_turns)
            app.state.service = ServiceState(runtime=runtime, settings=service, signer=signer,
                                             templates=_templates(), chat=chat)
            if service.worker_interval_seconds > 0:
                background = BackgroundWorker(runtime, service.worker_interval_seconds)
                background.start()  # refused while another loop runs on this SQLite folder
                worker = background
            yield
        finally:
            if worker is not None:
                worker.stop()
            if chat is not None:
                chat.close()
            runtime.close()

    # /docs and /redoc load Swagger UI and ReDoc from assets bundled in fastapi-offline,
    # served here under /static-docs: the docs work with no internet (no CDN).
    app = FastAPIOffline(title="DecisionOps", version="1", lifespan=lifespan,
                         static_url="/static-docs",
                         summary="From a model's prediction to coordinated, approved, executed "
                                 "action.",
                         description="Ingest predictions, follow decisions, answer approvals, "
                                     "record outcomes. Authenticate with `Authorization: Bearer "
                                     "<token>` (tokens from `decisionops users add`).")
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, default=service.max_body_bytes,
                       larger=service.max_ingest_bytes,
                       larger_prefixes=("/v1/predictions", "/v1/webhooks"))
    principal = principal_dependency()
    app.include_router(ops_router(principal))
    app.include_router(ingest_router(principal))
    app.include_router(outcomes_router(principal))
    app.include_router(approvals_router(principal))
    app.include_router(autonomy_router(principal))
    app.include_router(predictions_router(principal))
    app.include_router(langgraph_router())
    app.include_router(web_router())
    app.include_router(web_queue_router())
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    return app
