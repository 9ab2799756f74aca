"""``ForeignTool``: any langchain-core ``BaseTool`` adapted to the registry's contract.

What lives here: reading a foreign tool's JSON schema into a ``ToolSpec`` (its
governance fields from ``tool.metadata``, see ``ForeignTool``), validating arguments
against that schema with the same error shape as our own tools, calling the tool with
the executor's idempotency key when it declares an ``idempotency_key`` parameter, and
turning its output into a ``ToolReceipt``. What does not: allow-lists, limits, targets
and idempotency across runs stay with the guard, the approval service and the executor;
a tool source (entry points, MCP) only finds tools and hands them here.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import httpx
import jsonschema
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ValidationError

from decisionops.agent.errors import ConfigError, ToolCallError, pydantic_message
from decisionops.agent.models import Risk
from decisionops.agent.ports import PreviewSpec, ToolReceipt, ToolSpec

__all__ = ["KEY_PARAMETER", "ForeignTool", "Problems"]

KEY_PARAMETER = "idempotency_key"
"""A foreign tool that declares this parameter gets the executor's key in it."""

Problems = list[tuple[str, str]]
"""(field path, message) pairs, the first one naming the field a caller reports."""

_RETRYABLE = (ConnectionError, TimeoutError, httpx.TransportError)
_NEVER_SENT = (ConnectionRefusedError, httpx.ConnectError, httpx.ConnectTimeout)
"""Failures before the call reached the tool: a retry cannot repeat an effect."""
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class ForeignTool:
    """A ``BaseTool`` from outside our code, with what the guard needs to govern it.

    Governance comes from ``tool.metadata`` (a plug-in sets it; a source passes
    defaults): ``function`` (owner), ``risk`` (``low``/``medium``/``high``, default
    ``medium``), ``side_effects`` (default true: a tool is assumed to change something
    unless it says it only reads; MCP's ``readOnlyHint`` says so), ``targets`` (the
    arguments an approval binds), ``preview`` (a ``PreviewSpec`` as a dict: the read-only
    tool that shows what a call would change). Async-only tools run on a loop of their own.
    ``call`` replaces invoking the tool: it gets the arguments and the key (sources that
    speak a protocol of their own: MCP sessions, HTTP with a key header).
    """

    def __init__(self, tool: BaseTool, *, source: str, name: str | None = None,
                 defaults: Mapping[str, Any] | None = None,
                 call: Callable[[dict[str, Any], str], Any] | None = None,
                 key_via: str | None = None) -> None:
        self.tool = tool
        self.name = name or tool.name
        self.source = source
        self._call = call
        if not _NAME.match(self.name) or len(self.name) > 80:
            raise ConfigError(f"tool {self.name!r} ({source}): a tool's name is system.action "
                              "(lowercase letters, digits, underscores), e.g. helpdesk.open_case",
                              field="name")
        meta = {**(defaults or {}), **(tool.metadata or {})}
        schema = _schema_of(tool)
        properties = dict(schema.get("properties") or {})
        self.takes_key = KEY_PARAMETER in properties
        properties.pop(KEY_PARAMETER, None)
        required = [r for r in schema.get("required", []) if r != KEY_PARAMETER]
        # Unknown fields are refused, as for our own tools: a model or an edit may not
        # smuggle arguments the schema does not name.
        self.parameters: dict[str, Any] = {
            **{k: v for k, v in schema.items() if k not in ("properties", "required", "title")},
            "type": "object", "properties": properties, "required": required,
            "additionalProperties": schema.get("additionalProperties", False)}
        if not required:
            self.parameters.pop("required")
        self.key_via = key_via or ("parameter" if self.takes_key else "none")
        """How the tool receives the executor's key (``parameter``, ``header``) or
        ``none``: a re-run after a crash between its call and the record may repeat it."""
        self._validator = jsonschema.Draft202012Validator(self.parameters)
        function = meta.get("function")
        if not isinstance(function, str) or not function:
            raise ConfigError(f"tool {self.name!r} ({source}): metadata.function names no "
                              "business function", field="function")
        try:
            self._spec = ToolSpec(
                name=self.name, function=function, description=tool.description or self.name,
                risk=Risk(meta.get("risk", "medium")),
                side_effects=bool(meta.get("side_effects", True)),
                parameters=self.parameters, targets=tuple(meta.get("targets", ())),
                qualifiers=tuple(meta.get("qualifiers", ())),
                preview=PreviewSpec(**meta["preview"]) if meta.get("preview") else None)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ConfigError(f"tool {self.name!r} ({source}): metadata"
                              f"{'.' + where if where else ''}: {pydantic_message(error)}",
                              field=where or "metadata") from None
        except ValueError as exc:
            raise ConfigError(f"tool {self.name!r} ({source}): metadata: {exc}",
                              field="metadata") from None

    def spec(self) -> ToolSpec:
        return self._spec

    def problems(self, arguments: dict[str, Any]) -> Problems:
        found = []
        for error in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path)):
            path = [str(part) for part in error.path]
            if error.validator == "required":
                missing = [r for r in error.validator_value if r not in (error.instance or {})]
                path.append(missing[0] if missing else "")
                found.append((".".join(path), "Field required"))
            elif error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                for name in extra:
                    found.append((".".join([*path, name]), "Extra inputs are not permitted"))
            else:
                found.append((".".join(path), error.message))
        return found

    def run(self, arguments: dict[str, Any], idempotency_key: str) -> ToolReceipt:
        payload = dict(arguments)
        if self.takes_key:
            payload[KEY_PARAMETER] = idempotency_key
        try:
            output = (self._call(payload, idempotency_key) if self._call
                      else _invoke(self.tool, payload))
        except ToolCallError as exc:
            if exc.retryable and exc.details.get("sent") and self._repeats():
                raise self._unknown(exc.message) from exc
            raise
        except ToolException as exc:
            raise ToolCallError(f"{self.name} refused the call: {exc}", retryable=False,
                                tool=self.name) from exc
        except _RETRYABLE as exc:
            message = f"{self.name} could not be reached ({type(exc).__name__})"
            if not isinstance(exc, _NEVER_SENT) and self._repeats():
                raise self._unknown(message) from exc
            raise ToolCallError(message, retryable=True, tool=self.name) from exc
        return ToolReceipt(tool=self.name, idempotency_key=idempotency_key,
                           result=as_result(output))

    def _repeats(self) -> bool:
        """Whether a retry could repeat an effect: the tool acts and takes no key."""
        return self._spec.side_effects and self.key_via == "none"

    def _unknown(self, message: str) -> ToolCallError:
        # The call may have reached the tool and acted; without a key a retry could act
        # twice (invariant 2), so it fails for good and the executor records it unknown.
        return ToolCallError(f"{message}; it takes no idempotency key and may have acted, "
                             "so it is not retried", retryable=False, tool=self.name)

    def recall(self, idempotency_key: str) -> ToolReceipt | None:
        if not self._spec.side_effects:
            return None  # a read leaves no record: there is nothing to reconcile
        # A foreign tool keeps no record we can ask: whether a failed call took effect is
        # unknown, and the executor records it so (never as "no effect").
        raise ToolCallError(f"{self.name} ({self.source}) cannot be asked whether a call "
                            "took effect", retryable=False, tool=self.name)


def _schema_of(tool: BaseTool) -> dict[str, Any]:
    schema = tool.args_schema
    if isinstance(schema, dict):
        return dict(schema)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return tool.tool_call_schema.model_json_schema() if tool.tool_call_schema else {}


def _invoke(tool: BaseTool, payload: dict[str, Any]) -> Any:
    call = {"name": tool.name, "args": payload, "id": f"call_{uuid.uuid4().hex[:12]}",
            "type": "tool_call"}
    try:
        message = tool.invoke(call)
    except NotImplementedError:  # an async-only tool
        message = run_coroutine(tool.ainvoke(call))
    return message


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run an async tool from the executor's worker threads (none has a running loop)."""
    return asyncio.run(coroutine)


def as_result(output: Any) -> dict[str, Any]:
    """A tool's output as a receipt's result: a JSON object stays one, structured content
    wins over text, anything else is kept under ``content``."""
    artifact = None
    if isinstance(output, ToolMessage):
        if output.status == "error":
            raise ToolCallError(f"{output.name or 'tool'} reported an error: "
                                f"{_text(output.content)[:500]}", retryable=False)
        artifact, output = output.artifact, output.content
    if isinstance(artifact, Mapping) and isinstance(artifact.get("structured_content"), Mapping):
        return dict(artifact["structured_content"])
    if isinstance(output, Mapping):
        return json.loads(json.dumps(dict(output), default=str))
    text = _text(output)
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"content": text}
    return parsed if isinstance(parsed, dict) else {"content": parsed}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text", "") if isinstance(c, Mapping) else str(c) for c in content]
        return "".join(parts)
    return json.dumps(content, default=str)
