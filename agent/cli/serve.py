"""``decisionops serve``: the HTTP API, web inbox and ops chat, with the worker loop."""

from __future__ import annotations

from typing import Annotated

import typer

from decisionops.agent.cli._common import console, fail, say, settings
from decisionops.agent.errors import pydantic_message

__all__ = ["serve"]


def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65_535, help="Port.")] = 8400,
          worker: Annotated[bool, typer.Option(
              "--worker/--no-worker",
              help="Also run the loop (triage, start decisions, apply answers).")] = True,
          ) -> None:
    """Serve the API (/v1, OpenAPI at /openapi.json), the web inbox (/inbox) and the ops
    chat (/chat) on embedded defaults. On SQLite one process runs the loop per data
    folder: with `decisionops run` already running, start this with --no-worker.

    Example: decisionops serve --port 8400
    """
    import uvicorn
    from pydantic import ValidationError

    from decisionops.agent.api import ServiceSettings, create_app

    try:
        service = ServiceSettings(host=host, port=port, **(
            {} if worker else {"worker_interval_seconds": 0}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise fail(f"settings: {'.'.join(str(p) for p in err['loc'])}: {pydantic_message(err)}") from exc
    conf = settings()
    if worker:
        from decisionops.agent.errors import LoopAlreadyRunning
        from decisionops.agent.llm import check_planner_settings
        from decisionops.agent.looplock import LoopLock

        check_planner_settings(conf)  # its worker plans: said here, not as a start-up trace
        try:
            LoopLock(conf, "serve").probe()  # the app holds it while its worker runs
        except LoopAlreadyRunning as exc:
            raise fail(exc.message, status=409) from None
    if conf.uplift_warning:
        say("[yellow]warning:[/] {}", conf.uplift_warning, err=True, highlight=False)
    _port_free(host, port)
    app = create_app(conf, service=service)
    console.print(f"DecisionOps on http://{host}:{port}  (inbox /inbox, API /v1, docs /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False,
                server_header=False, timeout_graceful_shutdown=10)


def _port_free(host: str, port: int) -> None:
    """Refuse, before announcing anything, a port another server listens on (trial 32:
    the banner came first, then uvicorn's error and an exit code of 3)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return  # uvicorn says what is wrong with the host
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return
            raise fail(f"--port: {host}:{port} is in use (another server listens there): "
                       "stop it, or choose another port with --port", status=409,
                       field="--port") from None
