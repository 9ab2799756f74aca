"""The README's "Add your own tools" examples work as written: the plug-in module and its
entry point give a governed tool, the MCP server and its ``[[tool_servers]]`` entry run a
call, and the ``[[openapi_tools]]`` entry is valid configuration."""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from decisionops.agent.settings import OpenApiToolsConfig, Settings
from decisionops.tools._mcp import McpTools
from decisionops.tools._plugins import entry_point_tools
from decisionops.tools.registry import ToolRegistry

REPO = Path(__file__).resolve().parents[2]


def _blocks(language: str) -> list[str]:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("\n## Add your own tools\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


def test_the_plug_in_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin, _ = _blocks("python")
    (tmp_path / "acme_pager.py").write_text(plugin)
    monkeypatch.syspath_prepend(str(tmp_path))
    # tests/cli/test_tools_list.py imports a module of the same name in this process.
    monkeypatch.delitem(sys.modules, "acme_pager", raising=False)
    entry = tomllib.loads(_blocks("toml")[0])["project"]["entry-points"]["decisionops.tools"]
    points = [EntryPoint(name=n, value=v, group="decisionops.tools") for n, v in entry.items()]
    registry = ToolRegistry(entry_point_tools(points))
    assert registry.source_of("pager.page") == "entry_point:pager"
    assert registry.spec("pager.page").targets == ("team",)
    receipt = registry.call("pager.page", {"team": "ops", "message": "m"}, idempotency_key="k-1")
    assert receipt.result == {"paged": "ops", "key": "k-1"}


@pytest.mark.slow
def test_the_mcp_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server beside the config file, run from another directory: ``desk_server.py``
    is read from the file's folder."""
    _, server = _blocks("python")
    (tmp_path / "desk_server.py").write_text(server)
    monkeypatch.setenv("DESK_TOKEN", "t")
    example = _blocks("toml")[1]
    assert 'command = ["python", "desk_server.py"]' in example
    # this interpreter (it has mcp), not whichever python is first on PATH
    example = example.replace('"python"', json.dumps(sys.executable))
    (tmp_path / "decisionops.toml").write_text(example)
    for key in [k for k in os.environ if k.startswith("DECISIONOPS_")
                and k != "DECISIONOPS_FORBID_REAL_LLM"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DECISIONOPS_CONFIG", str(tmp_path / "decisionops.toml"))
    monkeypatch.chdir(tmp_path.parent)
    mcp = McpTools(Settings().tool_servers)
    try:
        registry = ToolRegistry(mcp.tools())
        assert registry.spec("desk.open_case").targets == ("account_id",)
        receipt = registry.call("desk.open_case", {"account_id": "A-1", "summary": "s"},
                                idempotency_key="idem-12345678")
        assert receipt.result == {"case_id": "CASE-12345678", "account_id": "A-1"}
    finally:
        mcp.close()


def test_the_openapi_example_is_valid_configuration() -> None:
    (config,) = tomllib.loads(_blocks("toml")[2])["openapi_tools"]
    assert OpenApiToolsConfig.model_validate(config).operations == ["createCredit", "getAccount"]
