"""Where the registry's tools come from, wired at the composition root.

``build_tool_registry`` gathers, in this order: the bundled reference enterprise (the
zero-config default, source ``reference``), the ``decisionops.tools`` entry points of
installed distributions (``entry_point:<name>``), the OpenAPI operations of
``[[openapi_tools]]`` (``openapi:<name>``) and the MCP servers of ``[[tool_servers]]``
(``mcp:<server>``, each server's tools remembered in ``<home>/tool_servers`` for a start
while it is down), the HTTP ones behind one outbound host allow-list. Two tools with one
name are a configuration error naming both sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from decisionops.agent.settings import Settings
from decisionops.tools._foreign import ForeignTool
from decisionops.tools._openapi import openapi_tools
from decisionops.tools._outbound import HostGuard
from decisionops.tools._plugins import entry_point_tools
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry, build_reference_registry

__all__ = ["ToolSources", "build_tool_registry", "host_guard"]


@dataclass
class ToolSources:
    registry: ToolRegistry
    close: Callable[[], None]
    """Ends the MCP sessions."""


def build_tool_registry(settings: Settings, enterprise: Enterprise) -> ToolSources:
    reference = build_reference_registry(enterprise)
    tools: list = [reference.tool(spec.name) for spec in reference.specs()]
    tools.extend(entry_point_tools())
    guard = host_guard(settings)
    tools.extend(openapi_tools(settings.openapi_tools, guard))
    if not settings.tool_servers:
        return ToolSources(ToolRegistry(tools), lambda: None)
    from decisionops.tools._mcp import McpTools  # the MCP client only when a server is configured

    # Each server's catalogue is remembered in the data folder: one that is down at a
    # later start is built from it (its calls fail as retryable until it answers).
    mcp = McpTools(settings.tool_servers, guard, catalogues=settings.home / "tool_servers")
    try:
        foreign: list[ForeignTool] = mcp.tools()
        registry = ToolRegistry([*tools, *foreign])
    except BaseException:
        mcp.close()
        raise
    return ToolSources(registry, mcp.close)


def host_guard(settings: Settings) -> HostGuard:
    """The outbound allow-list: the hosts of configured URLs, and ``tool_hosts``."""
    urls = [c.base_url for c in settings.openapi_tools]
    urls += [c.spec for c in settings.openapi_tools if c.spec.startswith(("http://", "https://"))]
    urls += [c.url for c in settings.tool_servers if c.url]
    return HostGuard(configured=[httpx.URL(u).host for u in urls], explicit=settings.tool_hosts)
