"""``ToolRegistry``: the enterprise tools behind ``agent.ports.ToolPort``.

It lists specs, validates arguments (naming the first bad field, listing every
problem), calls a tool once per idempotency key, returning a ``ToolReceipt``, and
recalls the tool's record of the call made under a key. It also maps tool names onto
OpenAI-safe function names (``finance.issue_credit`` <-> ``finance__issue_credit``) for
LLM planners. ``build_reference_registry`` wires every
system module over one ``Enterprise``.

A registry holds tools of any source: the reference enterprise's ``EnterpriseTool``s and
``ForeignTool``s (any langchain-core ``BaseTool``: entry points, MCP servers), each with
the source it came from (``source_of``). Validation, the key check and error
classification are the same for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from decisionops.agent.errors import (
    ConfigError,
    DecisionOpsError,
    NotFoundError,
    ToolArgumentsError,
    ToolCallError,
    pydantic_message,
)
from decisionops.agent.ports import ToolReceipt, ToolSpec
from decisionops.tools import crm, erp, finance, maintenance, notify, operations, support
from decisionops.tools._base import EnterpriseTool
from decisionops.tools._foreign import ForeignTool, Problems
from decisionops.tools.enterprise import Enterprise

__all__ = ["REFERENCE", "ToolRegistry", "build_reference_registry", "openai_name"]

REFERENCE = "reference"
"""The source name of the bundled reference enterprise's tools."""

T = TypeVar("T")

_OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_KEY = 200


def openai_name(name: str) -> str:
    """``finance.issue_credit`` -> ``finance__issue_credit`` (dots are not allowed there)."""
    return name.replace(".", "__")


class _Reference:
    """An ``EnterpriseTool`` behind the adapter interface ``ForeignTool`` also has."""

    source = REFERENCE
    key_via = "recorded"
    """The reference enterprise records every effect under its key (and recalls it)."""

    def __init__(self, tool: EnterpriseTool) -> None:
        self.tool = tool
        self.name = tool.name
        self._spec = tool.spec()

    def spec(self) -> ToolSpec:
        return self._spec

    def normalized(self, arguments: dict[str, Any]) -> tuple[dict[str, Any] | None, Problems]:
        try:
            model = self.tool.arguments_model.model_validate(arguments)
        except ValidationError as exc:
            return None, [(".".join(str(part) for part in error["loc"]), pydantic_message(error))
                          for error in exc.errors(include_url=False)]
        return model.model_dump(mode="json"), []

    def run(self, arguments: dict[str, Any], idempotency_key: str) -> ToolReceipt:
        # The executor's path: the tool's own function, without LangChain's callback
        # and run-tree machinery (we trace tool calls ourselves). A model's tool calls
        # go through the same function via ``tool.invoke``.
        _, receipt = self.tool.func(**arguments, idempotency_key=idempotency_key)
        if not isinstance(receipt, ToolReceipt):
            raise ToolCallError(f"{self.name} returned no receipt", retryable=False,
                                tool=self.name)
        return receipt

    def recall(self, idempotency_key: str) -> ToolReceipt | None:
        return self.tool.recall(idempotency_key)


_Adapter = _Reference | ForeignTool


class ToolRegistry:
    """A catalogue of tools of any source; implements ``agent.ports.ToolPort``."""

    def __init__(self, tools: Iterable[EnterpriseTool | ForeignTool]) -> None:
        self._tools: dict[str, _Adapter] = {}
        self._by_openai_name: dict[str, str] = {}
        for tool in tools:
            adapter = _Reference(tool) if isinstance(tool, EnterpriseTool) else tool
            safe = openai_name(adapter.name)
            if adapter.name in self._tools or safe in self._by_openai_name:
                raise ConfigError(f"tool {adapter.name!r} is registered twice "
                                  f"(again by {adapter.source})")
            if not _OPENAI_NAME.match(safe):
                raise ConfigError(f"tool {adapter.name!r} has no valid OpenAI function name")
            self._tools[adapter.name] = adapter
            self._by_openai_name[safe] = adapter.name
        self._specs = {name: tool.spec() for name, tool in self._tools.items()}
        for spec in self._specs.values():
            for lookup in spec.lookups:
                found = self._specs.get(lookup.tool)
                if found is None or found.side_effects:
                    raise ConfigError(f"tool {spec.name!r}: lookup {lookup.tool!r} is not a "
                                      "registered read-only tool")
            if spec.preview is not None:
                found = self._specs.get(spec.preview.tool)
                if found is None or found.side_effects:
                    raise ConfigError(f"tool {spec.name!r}: preview {spec.preview.tool!r} is not "
                                      "a registered read-only tool")

    # ------------------------------------------------------------------- ToolPort

    def specs(self) -> Sequence[ToolSpec]:
        return [self._specs[name] for name in sorted(self._specs)]

    def spec(self, name: str) -> ToolSpec:
        return self._specs[self._adapter(name).name]

    def source_of(self, name: str) -> str:
        """Where a tool comes from: ``reference``, ``entry_point:<name>``, ``mcp:<server>``."""
        return self._adapter(name).source

    def key_via(self, name: str) -> str:
        """How a tool honours the idempotency key: ``recorded`` (the reference enterprise),
        ``parameter`` (it declares ``idempotency_key``), ``header`` (``Idempotency-Key``),
        or ``none``."""
        return self._adapter(name).key_via

    def validate(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        adapter = self._adapter(name)
        if not isinstance(arguments, Mapping):
            raise ToolArgumentsError("arguments must be an object", location=name)
        normalized, problems = _adapt_normalized(adapter, dict(arguments))
        if problems or normalized is None:
            listing = "; ".join(f"{field or '(arguments)'}: {msg}" for field, msg in problems)
            raise ToolArgumentsError(
                f"invalid arguments ({len(problems)} problem{'s' * (len(problems) > 1)}): "
                f"{listing}", field=problems[0][0] or None, location=name,
                problems=[f"{field}: {msg}" for field, msg in problems]) from None
        return normalized

    def call(self, name: str, arguments: Mapping[str, Any], *,
             idempotency_key: str) -> ToolReceipt:
        adapter = self._adapter(name)
        normalized = self.validate(name, arguments)
        _check_key(name, idempotency_key)
        return _classified(name, lambda: adapter.run(normalized, idempotency_key))

    def recall(self, name: str, *, idempotency_key: str) -> ToolReceipt | None:
        adapter = self._adapter(name)
        _check_key(name, idempotency_key)
        return _classified(name, lambda: adapter.recall(idempotency_key))

    # ------------------------------------------------------------------- LangChain / OpenAI

    def _adapter(self, name: str) -> _Adapter:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFoundError(f"unknown tool {name!r}", tool=name) from None

    def tool(self, name: str) -> Any:
        """The LangChain tool behind ``name`` (an ``EnterpriseTool`` for the reference)."""
        return self._adapter(name).tool

    def langchain_tools(self) -> list[Any]:
        """The LangChain tools (their ``tool_call_schema`` omits the idempotency key)."""
        return [self._tools[name].tool for name in sorted(self._tools)]

    def openai_name(self, name: str) -> str:
        return openai_name(self._adapter(name).name)

    def tool_name(self, function_name: str) -> str:
        """The tool behind an OpenAI function name (``NotFoundError`` if none)."""
        try:
            return self._by_openai_name[function_name]
        except KeyError:
            raise NotFoundError(f"unknown tool function {function_name!r}",
                                tool=function_name) from None

    def openai_tools(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Chat-completions ``tools`` entries for ``names`` (default: all)."""
        chosen = sorted(self._tools) if names is None else list(names)
        return [{"type": "function", "function": {
            "name": self.openai_name(name),
            "description": self.spec(name).description,
            "parameters": self.spec(name).parameters,
        }} for name in chosen]


def _adapt_normalized(adapter: _Adapter,
                      arguments: dict[str, Any]) -> tuple[dict[str, Any] | None, Problems]:
    if isinstance(adapter, _Reference):
        return adapter.normalized(arguments)
    problems = adapter.problems(arguments)
    return (None if problems else arguments), problems


def _check_key(name: str, idempotency_key: str) -> None:
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= _MAX_KEY:
        raise ToolArgumentsError(f"must be a non-empty string of at most {_MAX_KEY} "
                                 "characters", field="idempotency_key", location=name)


def _classified(name: str, work: Callable[[], T]) -> T:
    try:
        return work()
    except DecisionOpsError:
        raise
    except Exception as exc:
        # A bug inside a tool: the executor still needs a classified failure, and the
        # original stays attached as the cause for the logs. Its message goes with it
        # (cut short): a plugin's author reads why in `decisions show`.
        said = " ".join(str(exc).split())[:300]
        raise ToolCallError(f"{name} failed unexpectedly ({type(exc).__name__}"
                            f"{': ' + said if said else ''})", retryable=False,
                            tool=name) from exc


def build_reference_registry(enterprise: Enterprise) -> ToolRegistry:
    """Every tool of every system, acting on ``enterprise``."""
    modules = (crm, support, finance, erp, maintenance, operations, notify)
    return ToolRegistry(tool for module in modules for tool in module.build_tools(enterprise))
