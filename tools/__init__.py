"""Enterprise tools: one module per system kind, a registry, the reference enterprise.

``tools.crm``, ``tools.support``, ``tools.finance``, ``tools.erp``,
``tools.maintenance``, ``tools.operations`` and ``tools.notify`` each build the
LangChain tools of one system over an ``Enterprise``; ``tools.registry`` gathers them
behind ``agent.ports.ToolPort``; ``tools.enterprise`` is the SQLite-backed reference
enterprise they act on. ``tools.sources`` adds tools from outside our code: any
langchain-core tool (``_foreign``) from ``decisionops.tools`` entry points (``_plugins``),
MCP servers (``_mcp``) and OpenAPI operations (``_openapi``), HTTP ones behind the
outbound host allow-list (``_outbound``). ``tools`` may import ``agent``; ``agent`` never
imports ``tools``.
"""

__all__: list[str] = []
