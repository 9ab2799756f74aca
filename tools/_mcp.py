"""Tools of MCP servers (``[[tool_servers]]``), each a ``ForeignTool`` named
``<server>.<tool>`` whose source is ``mcp:<server>``.

One event loop in a daemon thread holds one session per server, reused by every call
and restarted when it dies (the process exited, the connection dropped, a call timed
out). A server that cannot be reached fails the call as retryable
(``ToolCallError(retryable=True)``): the executor retries it with backoff and the worker
goes on. An error the tool itself reports (``isError``) fails the step for good. Errors
say why in words: a stdio server that ends at start by its exit status and the last
lines of its stderr (which still reaches ours), a failure inside the SDK's task groups
by the messages of the exceptions the group wraps.

A stdio server starts in its ``cwd`` (the config file's folder by default, see
``ToolServerConfig.cwd``), so relative paths in its command are read from there.

A server that is down when a command starts does not stop the command: each server's
catalogue (its tools as last listed, see ``Catalogues``) is remembered in the data folder,
and a server that cannot be listed at start is built from it, with a warning; its calls
fail as retryable until it answers again (the next call starts a session as after any
restart). A server never listed on this data folder, or whose configuration changed in a
way that could change its tools since, is still refused at start: its tools cannot be
known.

Transports come from the ``mcp`` SDK (2.x): stdio through
``langchain_mcp_adapters.sessions.create_session``, streamable HTTP through
``mcp.client.streamable_http`` (the adapters' HTTP session and tool converter target
mcp 1.x and cannot run on 2.x). What does not live here: validation, allow-lists, limits
and idempotency across runs (the registry, guard and executor own them).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import difflib
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from langchain_core.tools import StructuredTool
from mcp import ClientSession, types
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from decisionops.agent.errors import ConfigError, ToolCallError
from decisionops.agent.settings import ToolServerConfig, expand_env
from decisionops.tools._foreign import ForeignTool, as_result
from decisionops.tools._outbound import HostGuard

__all__ = ["Catalogues", "McpTools", "catalogue_hash"]

log = logging.getLogger("decisionops.tools")


class McpTools:
    """The configured MCP servers and their tools; ``close()`` ends every session.

    ``catalogues``: the folder where each server's catalogue is remembered (the data
    folder's ``tool_servers``); None remembers nothing (a server that cannot be listed
    is always refused)."""

    def __init__(self, servers: Sequence[ToolServerConfig],
                 guard: HostGuard | None = None, *, catalogues: Path | None = None) -> None:
        self._loop = asyncio.new_event_loop() if sys.platform == "win32" else _SessionLoop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mcp-sessions",
                                        daemon=True)
        self._thread.start()
        self.servers = {config.name: _Server(config, guard) for config in servers}
        self.catalogues = Catalogues(catalogues) if catalogues is not None else None

    def tools(self) -> list[ForeignTool]:
        """List every server's tools and remember them. A server that cannot be reached
        is built from its remembered catalogue (a warning names it, the cause and the
        catalogue's age); one that cannot be listed otherwise (none remembered, its
        configuration changed, it refused, its config is wrong) is a configuration error
        naming it: its tools cannot be known."""
        found: list[ForeignTool] = []
        for index, server in enumerate(self.servers.values()):
            try:
                listed = self._run(server, server.list_tools())
            except ToolCallError as exc:
                listed = self._remembered(index, server, exc)
            else:
                if self.catalogues is not None:
                    self.catalogues.save(server.config, listed)
            _check_names(index, server.config, listed)
            found.extend(self._adapt(server, tool) for tool in listed)
        return found

    def _remembered(self, index: int, server: _Server, exc: ToolCallError) -> list[types.Tool]:
        """The tools of a server that could not be listed, from its catalogue; else the
        configuration error that refuses the start."""
        config = server.config
        where = f"tool_servers[{index}] ({config.name})"
        refused = f"{where}: cannot list its tools: {exc.message}"
        if not exc.retryable or self.catalogues is None:
            # The server answered and refused, or the config is wrong (an env var not
            # set, a host not allowed): not an outage that a catalogue can bridge.
            raise ConfigError(refused, field=f"tool_servers.{index}") from exc
        remembered = self.catalogues.load(config)
        if isinstance(remembered, str):
            raise ConfigError(f"{refused}; {remembered}", field=f"tool_servers.{index}") from exc
        tools, listed_at = remembered
        age = (datetime.now(UTC) - listed_at).total_seconds()
        log.warning("%s is down at start (%s); its %d tools are taken as it listed them %s "
                    "ago (%s, %s); calls to them fail as retryable until it answers again",
                    where, exc.message, len(tools), _age(age),
                    listed_at.isoformat(timespec="seconds"), self.catalogues.path(config.name))
        server.remembered = [_dump(tool) for tool in tools]
        return tools

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call ``tool`` on ``server`` in its session (from any thread)."""
        target = self.servers[server]
        result = self._run(target, target.call(tool, arguments))
        if target.remembered is not None:
            self._answers_again(target)
        return result

    def _answers_again(self, server: _Server) -> None:
        """A server built from its catalogue answered: list it, remember what it lists
        now, and say so when its tools differ from the ones this process took (they stay
        until a restart: the registry and the start checks were built from them)."""
        remembered, server.remembered = server.remembered, None
        if remembered is None:  # another thread got here first
            return
        name = server.config.name
        try:
            listed = self._run(server, server.list_tools())
        except ToolCallError as exc:
            log.warning("MCP server %r answers again but cannot be listed: %s", name,
                        exc.message)
            return
        if self.catalogues is not None:
            self.catalogues.save(server.config, listed)
        if [_dump(tool) for tool in listed] != remembered:
            log.warning("MCP server %r answers again, with tools other than the remembered "
                        "ones this process uses; restart decisionops to use them", name)
        else:
            log.info("MCP server %r answers again", name)

    def close(self) -> None:
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self, server: _Server, work: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            # The coroutine has its own timeouts; this one only guards against a stuck loop.
            return future.result(timeout=server.config.timeout_seconds * 3 + 5)
        except TimeoutError:
            future.cancel()
            raise ToolCallError(f"MCP server {server.config.name!r} did not answer",
                                retryable=True, server=server.config.name,
                                sent=True) from None

    def _adapt(self, server: _Server, tool: types.Tool) -> ForeignTool:
        config = server.config
        name = f"{config.name}.{_local(tool.name)}"
        # Only the operator's word makes a tool read-only (low risk, retried freely); the
        # server's readOnlyHint is its own claim about itself.
        read_only = tool.name in config.read_only

        def call(arguments: dict[str, Any], _key: str = "",
                 _tool: str = tool.name) -> dict[str, Any]:
            return self.call(config.name, _tool, arguments)

        def invoke(**arguments: Any) -> dict[str, Any]:
            return call(arguments)

        lc_tool = StructuredTool(name=name, description=tool.description or name,
                                 args_schema=dict(tool.input_schema), func=invoke)
        return ForeignTool(lc_tool, source=f"mcp:{config.name}", call=call, defaults={
            "function": config.function,
            "risk": "low" if read_only else config.risks.get(tool.name, config.risk),
            "side_effects": not read_only,
            "targets": config.targets.get(tool.name, ()),
            "preview": _preview(config.name, config.previews.get(tool.name)),
        })


class Catalogues:
    """Each server's catalogue as last listed, one JSON file per server in ``folder``
    (``<name>.json``, written atomically): the tools as the server listed them (their
    wire form: names, descriptions, input schemas, annotations), when, and the hash of
    the configuration they were listed with (``catalogue_hash``). No command, URL, env
    or header value is written."""

    VERSION = 1

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, server: str) -> Path:
        return self.folder / f"{server}.json"

    def save(self, config: ToolServerConfig, tools: Sequence[types.Tool]) -> None:
        """Remember ``tools`` (a failure to write is a warning: the listing stands)."""
        payload = {"version": self.VERSION, "server": config.name,
                   "config_hash": catalogue_hash(config),
                   "listed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                   "tools": [_dump(tool) for tool in tools]}
        path = self.path(config.name)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=f".{config.name}.",
                                        suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(payload, out, indent=1, sort_keys=True)
                    out.write("\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            log.warning("MCP server %r: cannot remember its tools in %s (%s); if it is down "
                        "at a later start, commands will refuse to start", config.name, path,
                        exc.strerror or exc)

    def load(self, config: ToolServerConfig) -> tuple[list[types.Tool], datetime] | str:
        """The tools remembered for ``config`` and when they were listed; else why none
        can be used (a clause of the refusal)."""
        path = self.path(config.name)
        hint = "once it has been listed, a later outage no longer stops commands"
        try:
            saved = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return f"it was never listed on this data folder ({self.folder}): {hint}"
        except (OSError, ValueError) as exc:
            return f"its remembered tools ({path}) cannot be read ({exc}): {hint}"
        try:
            if saved["version"] != self.VERSION or saved["server"] != config.name:
                raise ValueError(f"not a catalogue of {config.name!r} (version "
                                 f"{self.VERSION})")
            listed_at = datetime.fromisoformat(saved["listed_at"])
            if saved["config_hash"] != catalogue_hash(config):
                return (f"its configuration changed since it was last listed "
                        f"({listed_at.isoformat(timespec='seconds')}), so the tools remembered "
                        "then are not used (once it has been listed with this configuration, "
                        "a later outage no longer stops commands)")
            tools = [types.Tool.model_validate(tool) for tool in saved["tools"]]
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's errors are ValueErrors
            return f"its remembered tools ({path}) cannot be read ({exc}): {hint}"
        if listed_at.tzinfo is None:
            listed_at = listed_at.replace(tzinfo=UTC)
        return tools, listed_at


def catalogue_hash(config: ToolServerConfig) -> str:
    """What of a server's configuration could change the tools it lists: how it is
    reached (transport, command, cwd, url), its env variables as the config writes them
    (``TOOLSET = "billing"`` may change what it lists; a secret is a ``${VAR}`` reference
    there, never expanded here) and the names of its headers. Only this hash is written.
    What governs the tools (function, risk, read_only, targets, previews, timeout) is
    applied as they are built, so changing it keeps the catalogue."""
    identity = {"name": config.name, "transport": config.transport,
                "command": config.command, "cwd": str(config.cwd) if config.cwd else None,
                "url": config.url, "env": sorted(config.env.items()),
                "headers": sorted(name.lower() for name in config.headers)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8"))
    return f"sha256:{digest.hexdigest()}"


def _dump(tool: types.Tool) -> dict[str, Any]:
    """A listed tool in its wire form (what a catalogue keeps)."""
    return tool.model_dump(mode="json", by_alias=True, exclude_none=True)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _check_names(index: int, config: ToolServerConfig, listed: Sequence[types.Tool]) -> None:
    """Every tool a server's settings name is one it lists: a misspelt name in
    ``targets`` would leave the tool's target unlocked, in ``read_only`` a read a write,
    in ``previews`` the call unwatched, and nothing would say so."""
    names = sorted(tool.name for tool in listed)
    named = [(f"targets.{n}", n) for n in config.targets]
    named += [("read_only", n) for n in config.read_only]
    named += [(f"risks.{n}", n) for n in config.risks]
    named += [(f"previews.{n}", n) for n in config.previews]
    named += [(f"previews.{n}.tool", p.tool) for n, p in config.previews.items()]
    for where, name in named:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"tool_servers[{index}] ({config.name}): {where}: {name!r} is "
                              f"not a tool of the server (it lists {', '.join(names) or 'none'})"
                              f"{hint}", field=f"tool_servers.{index}.{where}")


def _local(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower())


def _preview(server: str, preview: Any) -> dict[str, Any] | None:
    """A configured preview as a ``PreviewSpec`` (dict), its tool named as we name it."""
    if preview is None:
        return None
    return {"tool": f"{server}.{_local(preview.tool)}", "arguments": preview.arguments,
            "watch": tuple(preview.watch), "tolerance": preview.tolerance}


class _Server:
    """One server's session, kept by a task on the loop (anyio requires the task that
    opened a transport to close it)."""

    def __init__(self, config: ToolServerConfig, guard: HostGuard | None) -> None:
        self.config = config
        self.guard = guard
        self.starts = 0
        """Sessions opened so far (a restart adds one)."""
        self.remembered: list[dict[str, Any]] | None = None
        """The tools (wire form) taken from the catalogue at start, until it answers."""
        self._keeper: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._session: ClientSession | None = None
        self._lock: asyncio.Lock | None = None

    async def list_tools(self) -> list[types.Tool]:
        async def work(session: ClientSession) -> list[types.Tool]:
            tools: list[types.Tool] = []
            cursor: str | None = None
            while True:
                page = await session.list_tools(cursor=cursor) if cursor else \
                    await session.list_tools()
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return tools
        return await self._with_session("list tools", work)

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result: types.CallToolResult = await self._with_session(
            f"call {tool}", lambda session: session.call_tool(tool, arguments))
        if result.is_error:
            text = "".join(getattr(block, "text", "") for block in result.content)
            raise ToolCallError(f"{self.config.name}.{tool} reported an error: {text[:500]}",
                                retryable=False, server=self.config.name)
        if isinstance(result.structured_content, dict):
            return dict(result.structured_content)
        return as_result([{"text": getattr(block, "text", "")} for block in result.content])

    async def _with_session(self, what: str, work: Any) -> Any:
        name = self.config.name
        sent = False
        """Whether the request may have reached the server (a retry could repeat it)."""
        try:
            session = await self._session_now()
            sent = True
            return await asyncio.wait_for(work(session), self.config.timeout_seconds)
        except MCPError as exc:
            if exc.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                await self.stop()
                raise ToolCallError(f"MCP server {name!r} is unavailable ({what}: {exc})",
                                    retryable=True, server=name, sent=sent) from None
            # The server answered: a protocol-level refusal (unknown tool, bad arguments).
            raise ToolCallError(f"MCP server {name!r} refused to {what}: {exc}",
                                retryable=False, server=name) from None
        except ToolCallError:
            raise
        except ConfigError as exc:  # an env var named by the config is not set
            raise ToolCallError(exc.message, retryable=False, server=name) from None
        except Exception as exc:
            if refused := _refused(exc):
                # Not an outage: the program is not there, or the server turned the
                # credentials or the address down. Retrying cannot help; say so.
                await self.stop()
                raise ToolCallError(f"MCP server {name!r} cannot be used ({what}: {refused})",
                                    retryable=False, server=name, sent=sent) from None
            # The session is gone or stuck: drop it, the next call starts a new one.
            await self.stop()
            cause = f"no answer within {self.config.timeout_seconds:g}s" \
                if isinstance(exc, TimeoutError) else _cause(exc)
            raise ToolCallError(f"MCP server {name!r} is unavailable ({what}: {cause})",
                                retryable=True, server=name, sent=sent) from None

    async def _session_now(self) -> ClientSession:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._keeper is None or self._keeper.done() or self._session is None:
                await self._start()
            assert self._session is not None
            return self._session

    async def _start(self) -> None:
        await self.stop()
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._keeper = asyncio.create_task(self._keep(ready, self._stop))
        try:
            self._session = await asyncio.wait_for(ready, self.config.timeout_seconds)
        except BaseException:
            await self.stop()
            raise
        self.starts += 1

    async def _keep(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        started: list[_Process] = []
        _STARTED.set(started)  # this task's context: the processes _open starts
        try:
            async with _open(self.config, self.guard) as session:
                await session.initialize()
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                if not isinstance(exc, Exception):
                    ready.set_exception(ConnectionError(type(exc).__name__))
                elif why := await self._why_not_started(exc, started):
                    ready.set_exception(why)
                else:
                    ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    async def _why_not_started(self, exc: Exception, started: list[_Process]
                               ) -> ConnectionError | None:
        """Why a stdio server did not start, when the process tells more than the error:
        it could not be started, or it ended (the session only saw the connection close)."""
        if self.config.transport != "stdio":
            return None
        assert self.config.command
        leaves = _leaves(exc)
        if not started:
            for leaf in leaves:
                if isinstance(leaf, OSError):
                    detail = f"{leaf.strerror}: {leaf.filename}" if leaf.filename else leaf
                    return _Misconfigured(f"cannot start {self.config.command[0]}: {detail}")
            return None
        if all(isinstance(leaf, MCPError) and leaf.code == CONNECTION_CLOSED for leaf in leaves):
            ended = await started[-1].ended()
            return ConnectionError(ended) if ended else None
        return None

    async def stop(self) -> None:
        keeper, self._keeper, self._session = self._keeper, None, None
        if keeper is None:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(keeper), 5)
        except BaseException:
            keeper.cancel()
            with contextlib.suppress(BaseException):
                await keeper


@contextlib.asynccontextmanager
async def _open(config: ToolServerConfig, guard: HostGuard | None) -> AsyncIterator[ClientSession]:
    where = f"tool_servers.{config.name}"
    try:
        env = {k: expand_env(v, f"{where}.env.{k}") for k, v in config.env.items()}
        headers = {k: expand_env(v, f"{where}.headers.{k}") for k, v in config.headers.items()}
    except ValueError as exc:
        raise ConfigError(str(exc), field=where) from None
    if config.transport == "stdio":
        from langchain_mcp_adapters.sessions import create_session

        assert config.command
        connection: Any = {"transport": "stdio", "command": config.command[0],
                           "args": config.command[1:], "env": env or None,
                           "cwd": config.cwd}
        async with create_session(connection) as session:
            yield session
        return
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import (
        MCP_DEFAULT_SSE_READ_TIMEOUT,
        MCP_DEFAULT_TIMEOUT,
        create_mcp_http_client,
    )

    assert config.url
    if guard is None:
        client = create_mcp_http_client(headers=headers or None)
    else:  # every request of the session through the allow-list, to the checked address
        import httpx2

        guard.check(config.url)
        client = guard.async_client(module=httpx2, headers=headers or None,
                                    timeout=httpx2.Timeout(MCP_DEFAULT_TIMEOUT,
                                                           read=MCP_DEFAULT_SSE_READ_TIMEOUT))
    async with client, streamable_http_client(config.url, http_client=client) as streams, \
            ClientSession(streams[0], streams[1]) as session:
        yield session


class _Misconfigured(ConnectionError):
    """A stdio server's program cannot be started (missing, not executable)."""


def _refused(exc: BaseException) -> str | None:
    """Why ``exc`` is not an outage a retry or a remembered catalogue could bridge: a
    program that cannot be started, or an HTTP server answering 4xx (bad credentials, a
    wrong path) other than 408 and 429. None when it may be one."""
    for leaf in _leaves(exc):
        if isinstance(leaf, _Misconfigured):
            return str(leaf)
        response = getattr(leaf, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            return f"HTTP {status}"
    return None


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions an exception group wraps (task groups nest them), else ``exc``."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _cause(exc: BaseException) -> str:
    """An error in words: its leaves' messages (a class name only when one has none)."""
    return "; ".join(dict.fromkeys(str(leaf) or type(leaf).__name__ for leaf in _leaves(exc)))


_TAIL_LINES = 5
_TAIL_LINE_CHARS = 300

_STARTED: contextvars.ContextVar[list[_Process] | None] = contextvars.ContextVar(
    "mcp_started", default=None)
"""Where the processes started by the current task are recorded (set by a server's
keeper task; unset elsewhere, where nothing is recorded)."""


class _Process:
    """A stdio server's process: its exit status and the last lines of its stderr."""

    def __init__(self, transport: asyncio.SubprocessTransport, stderr: _StderrTail) -> None:
        self.transport = transport
        self.stderr = stderr

    async def ended(self) -> str | None:
        """How the process ended (None: it has not)."""
        status = self.transport.get_returncode()
        if status is None:
            return None
        with contextlib.suppress(TimeoutError):  # a child of it may hold stderr open
            await asyncio.wait_for(self.stderr.closed.wait(), 1)
        why = f"the process exited with status {status}" if status >= 0 else \
            f"the process was ended by signal {-status}"
        lines = self.stderr.last_lines()
        return f"{why}; its stderr ended with: {' / '.join(lines)}" if lines else why


class _StderrTail(asyncio.Protocol):
    """A stdio server's stderr, written on to where it went before (``target``) with its
    last lines kept for an error message."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self.closed = asyncio.Event()
        self._lines: deque[str] = deque(maxlen=_TAIL_LINES)
        self._partial = ""
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode

    def data_received(self, data: bytes) -> None:
        text = self._decode(data)
        with contextlib.suppress(OSError, ValueError):  # our stderr closed: keep the tail
            self.target.write(text)
            self.target.flush()
        *lines, partial = (self._partial + text).split("\n")
        self._lines.extend(line for line in lines if line.strip())
        self._partial = partial[-_TAIL_LINE_CHARS:]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial.strip():
            self._lines.append(self._partial)
        self._partial = ""
        self.closed.set()

    def last_lines(self) -> list[str]:
        return [line.strip()[:_TAIL_LINE_CHARS] for line in self._lines]


class _SessionLoop(asyncio.SelectorEventLoop):
    """The sessions' event loop (POSIX). A process started by a server's keeper task
    (where ``_STARTED`` is set) gets a pipe for stderr instead of our stderr itself: what
    it writes is passed on unchanged and its last lines kept, so a server that ends at
    start can be reported with its exit status and what it said."""

    async def subprocess_exec(self, protocol_factory: Any, *args: Any, stderr: Any = None,
                              **kwargs: Any) -> Any:
        started = _STARTED.get()
        if started is None or not hasattr(stderr, "write"):
            return await super().subprocess_exec(protocol_factory, *args, stderr=stderr,
                                                 **kwargs)
        read_end, write_end = os.pipe()
        try:
            transport, protocol = await super().subprocess_exec(
                protocol_factory, *args, stderr=write_end, **kwargs)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the child holds its own copy
        tail = _StderrTail(stderr)
        try:
            await self.connect_read_pipe(lambda: tail, os.fdopen(read_end, "rb", buffering=0))
        except BaseException:  # cancelled in between: the caller never sees the process
            transport.close()
            raise
        started.append(_Process(transport, tail))
        return transport, protocol
