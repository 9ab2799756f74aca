"""Tools from installed distributions: the ``decisionops.tools`` entry-point group.

An entry point names a ``BaseTool``, a ``BaseToolkit`` (``get_tools()``), a list of
them, or a callable without arguments returning any of those. Each tool becomes a
``ForeignTool`` whose source is ``entry_point:<entry point name>``; its governance
(``function``, ``risk``, ``side_effects``, ``targets``) comes from ``tool.metadata``.
What does not live here: allow-lists and limits (``functions.yaml``), which govern
these tools like any other.

    [project.entry-points."decisionops.tools"]
    helpdesk = "helpdesk_tools:tools"
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit

from decisionops.agent.errors import ConfigError
from decisionops.tools._foreign import ForeignTool

__all__ = ["GROUP", "entry_point_tools"]

GROUP = "decisionops.tools"


def entry_point_tools(points: Iterable[EntryPoint] | None = None) -> list[ForeignTool]:
    """The tools of every ``decisionops.tools`` entry point (``points``: those instead)."""
    found: list[ForeignTool] = []
    chosen = entry_points(group=GROUP) if points is None else points
    for point in sorted(chosen, key=lambda p: p.name):
        where = f"entry point {point.name!r} ({point.value}) of group {GROUP}"
        try:
            loaded = point.load()
        except Exception as exc:
            raise ConfigError(f"{where}: cannot be loaded ({type(exc).__name__}: {exc})",
                              field=point.name) from exc
        source = f"entry_point:{point.name}"
        found.extend(ForeignTool(tool, source=source) for tool in _tools_of(loaded, where))
    return found


def _tools_of(loaded: Any, where: str, depth: int = 0) -> list[BaseTool]:
    if isinstance(loaded, BaseTool):
        return [loaded]
    if isinstance(loaded, BaseToolkit):
        return list(loaded.get_tools())
    if isinstance(loaded, list | tuple):
        return [tool for item in loaded for tool in _tools_of(item, where, depth)]
    if callable(loaded) and depth == 0:
        try:
            made = loaded()
        except Exception as exc:
            raise ConfigError(f"{where}: calling it failed ({type(exc).__name__}: {exc})") from exc
        return _tools_of(made, where, depth + 1)
    raise ConfigError(f"{where}: gives {type(loaded).__name__}, not a BaseTool, a "
                      "BaseToolkit, a list of them or a function returning one")
