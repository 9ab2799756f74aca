"""Tools from OpenAPI 3 operations (``[[openapi_tools]]``): each allow-listed operation
becomes a ``ForeignTool`` named ``<name>.<operation_id>`` (snake case), source
``openapi:<name>``.

Its arguments are the operation's path, query and header parameters and, for a JSON
body, the body's properties (or one ``body`` argument when the body is not an object
or a name clashes). A call goes through the ``HostGuard`` client (allow-listed hosts,
no redirects), with the credential header read from the environment and, for every
method other than GET/HEAD/OPTIONS, the executor's key as ``Idempotency-Key``.
429, 408 and 5xx answers and transport failures are retryable; other 4xx are not.
What does not live here: validation, allow-lists and limits (the registry and guard).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from langchain_core.tools import StructuredTool

from decisionops.agent.errors import ConfigError, ToolCallError
from decisionops.agent.settings import OpenApiToolsConfig
from decisionops.tools._foreign import ForeignTool, as_result
from decisionops.tools._outbound import HostGuard

__all__ = ["openapi_tools"]

_READS = {"get", "head", "options"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_MAX_RESPONSE = 1_000_000


def openapi_tools(configs: Sequence[OpenApiToolsConfig], guard: HostGuard) -> list[ForeignTool]:
    found: list[ForeignTool] = []
    for index, config in enumerate(configs):
        where = f"openapi_tools[{index}] ({config.name})"
        document = _load(config, guard, where)
        operations = _operations(document)
        missing = [op for op in config.operations if op not in operations]
        if missing:
            raise ConfigError(f"{where}.operations: no operation {', '.join(missing)} in "
                              f"{config.spec}", field=f"openapi_tools.{index}.operations")
        if config.auth_env and config.auth_env not in os.environ:
            raise ConfigError(f"{where}.auth_env: environment variable {config.auth_env} is "
                              "not set", field=f"openapi_tools.{index}.auth_env")
        for operation_id in config.operations:
            method, path, operation = operations[operation_id]
            found.append(_Operation(config, guard, document, method, path, operation).tool())
    return found


def _load(config: OpenApiToolsConfig, guard: HostGuard, where: str) -> dict[str, Any]:
    try:
        if re.match(r"^https?://", config.spec):
            with guard.client(timeout=config.timeout_seconds) as client:
                response = client.get(config.spec)
                response.raise_for_status()
                text = response.text
        else:
            text = Path(config.spec).read_text("utf-8")
        document = yaml.safe_load(text)
    except (OSError, httpx.HTTPError, ToolCallError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}.spec: cannot read {config.spec} ({exc})") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3"):
        raise ConfigError(f"{where}.spec: {config.spec} is not an OpenAPI 3 document")
    return document


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, item in (document.get("paths") or {}).items():
        for method in _METHODS:
            operation = (item or {}).get(method)
            if isinstance(operation, dict) and operation.get("operationId"):
                shared = item.get("parameters", [])
                found[operation["operationId"]] = (method, path, {
                    **operation, "parameters": [*shared, *operation.get("parameters", [])]})
    return found


def _resolve(document: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """Inline local ``$ref``s (``#/components/...``), bounded against cycles."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            target: Any = document
            for part in node["$ref"][2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            return _resolve(document, target, depth + 1)
        return {k: _resolve(document, v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(document, v, depth + 1) for v in node]
    return node


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", name)).strip("_")


class _Operation:
    def __init__(self, config: OpenApiToolsConfig, guard: HostGuard, document: dict[str, Any],
                 method: str, path: str, operation: dict[str, Any]) -> None:
        self.config, self.guard, self.method, self.path = config, guard, method, path
        self.operation_id = operation["operationId"]
        self.name = f"{config.name}.{_snake(self.operation_id)}"
        self.places: dict[str, tuple[str, str]] = {}
        """argument → (where: path/query/header/body, name there)."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parameter in _resolve(document, operation.get("parameters", [])):
            where, name = parameter.get("in"), parameter.get("name", "")
            if where not in ("path", "query", "header") or name.lower() == "idempotency-key":
                continue
            argument = _snake(name) or name
            self.places[argument] = (where, name)
            properties[argument] = {**parameter.get("schema", {}),
                                    **({"description": parameter["description"]}
                                       if parameter.get("description") else {})}
            if parameter.get("required") or where == "path":
                required.append(argument)
        self.body_whole = False
        body = _resolve(document, operation.get("requestBody") or {})
        schema = ((body.get("content") or {}).get("application/json") or {}).get("schema")
        if schema is not None:
            fields = schema.get("properties") if schema.get("type", "object") == "object" else None
            if fields and not set(fields) & set(properties):
                for field, field_schema in fields.items():
                    self.places[field] = ("body", field)
                    properties[field] = field_schema
                required += [r for r in schema.get("required", []) if r in fields]
            else:
                self.body_whole = True
                self.places["body"] = ("body", "")
                properties["body"] = schema
                if body.get("required"):
                    required.append("body")
        self.schema = {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False}
        self.description = (operation.get("summary") or operation.get("description")
                            or f"{method.upper()} {path}")

    def tool(self) -> ForeignTool:
        reads = self.method in _READS

        def invoke(**arguments: Any) -> dict[str, Any]:
            raise ToolCallError(f"{self.name} is called by the executor, with a key",
                                retryable=False)

        lc_tool = StructuredTool(name=self.name, description=self.description,
                                 args_schema=self.schema, func=invoke)
        return ForeignTool(lc_tool, source=f"openapi:{self.config.name}", call=self.call,
                           key_via=None if reads else "header",
                           defaults={"function": self.config.function,
                                     "risk": "low" if reads else self.config.risk,
                                     "side_effects": not reads,
                                     "targets": self.config.targets.get(self.operation_id, ()),
                                     "preview": self._preview()})

    def _preview(self) -> dict[str, Any] | None:
        """The configured preview operation as a ``PreviewSpec`` (dict)."""
        preview = self.config.previews.get(self.operation_id)
        if preview is None:
            return None
        return {"tool": f"{self.config.name}.{_snake(preview.tool)}",
                "arguments": preview.arguments, "watch": tuple(preview.watch),
                "tolerance": preview.tolerance}

    def call(self, arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        path, query, headers, body = self.path, {}, {}, {}
        for argument, value in arguments.items():
            where, name = self.places[argument]
            if where == "path":
                path = path.replace("{" + name + "}", quote(str(value), safe=""))
            elif where == "query":
                query[name] = value
            elif where == "header":
                headers[name] = str(value)
            else:
                body = value if self.body_whole else {**body, name: value}
        if self.method not in _READS:
            headers["Idempotency-Key"] = idempotency_key
        if self.config.auth_header and self.config.auth_env:
            secret = os.environ.get(self.config.auth_env)
            if secret is None:
                raise ToolCallError(f"{self.name}: environment variable {self.config.auth_env} "
                                    "is not set", retryable=False)
            scheme = self.config.auth_scheme
            headers[self.config.auth_header] = f"{scheme} {secret}" if scheme else secret
        url = self.config.base_url.rstrip("/") + path
        has_body = bool(body) or self.body_whole
        try:
            with self.guard.client(timeout=self.config.timeout_seconds) as client:
                response = client.request(self.method.upper(), url, params=query or None,
                                          headers=headers, json=body if has_body else None)
        except httpx.TransportError as exc:
            raise ToolCallError(f"{self.name}: {self.config.name} could not be reached "
                                f"({type(exc).__name__})", retryable=True) from None
        return self._result(response, secret=headers.get(self.config.auth_header or ""))

    def _result(self, response: httpx.Response, *, secret: str | None) -> dict[str, Any]:
        status = response.status_code
        if status >= 300:
            retryable = status in (408, 425, 429) or status >= 500
            what = ("a redirect, not followed" if 300 <= status < 400
                    else response.text[:300].replace("\n", " "))
            for value in filter(None, (secret, secret and secret.split(" ")[-1])):
                what = what.replace(value, "***")  # a service that echoes the credential
            raise ToolCallError(f"{self.name}: HTTP {status} ({what})", retryable=retryable,
                                status=status)
        content = response.content[:_MAX_RESPONSE]
        if not content:
            return {"status": status}
        try:
            return as_result(json.loads(content))
        except ValueError:
            return {"content": content.decode("utf-8", "replace"), "status": status}
