"""``decisionops tools list [--json]``: every tool of every source (the reference
enterprise, an entry-point plug-in, an MCP server, OpenAPI operations), the functions
whose allow-list names it, and its schema."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib import resources
from pathlib import Path

import mcp.client.stdio  # noqa: F401  (see below)
import pytest
import yaml

from tests.cli.conftest import Cli
from tests.tools.servers.shop_api import build_app

# mcp's stdio client binds the server's stderr to ``sys.stderr`` as it is when the module is
# imported; imported here, before a CLI call in this process redirects stderr to a buffer.
SERVER = Path(__file__).parents[1] / "tools" / "servers" / "mcp_desk.py"

PLUGIN = '''
from langchain_core.tools import StructuredTool

def _page(team: str, message: str, idempotency_key: str) -> dict:
    return {"paged": team}

page = StructuredTool.from_function(_page, name="pager.page", description="Page a team.",
                                    metadata={"function": "operations", "risk": "low"})
'''


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    plugin = tmp_path / "site"
    plugin.mkdir()
    (plugin / "acme_pager.py").write_text(PLUGIN)
    info = plugin / "acme_pager-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pager\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[decisionops.tools]\npager = acme_pager:page\n")
    monkeypatch.syspath_prepend(str(plugin))
    (tmp_path / "shop.json").write_text(json.dumps(build_app().openapi()))
    functions = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                               .read_text("utf-8"))
    functions["functions"]["support"]["tools"].append("desk.open_case")
    functions["functions"]["operations"]["tools"].append("pager.page")
    (tmp_path / "functions.yaml").write_text(yaml.safe_dump(functions))
    (tmp_path / "decisionops.toml").write_text(textwrap.dedent(f'''
        functions_file = "{tmp_path / 'functions.yaml'}"

        [[tool_servers]]
        name = "desk"
        transport = "stdio"
        command = {json.dumps([sys.executable, str(SERVER)])}
        function = "support"
        read_only = ["case_count"]
        env = {{ DESK_CALLS = "{tmp_path / 'calls.jsonl'}" }}

        [[openapi_tools]]
        name = "shop"
        spec = "{tmp_path / 'shop.json'}"
        base_url = "https://shop.example.com"
        operations = ["createCredit", "getAccount"]
        function = "finance"
        '''))
    return tmp_path


@pytest.mark.slow
def test_tools_list_json_shows_every_source(configured: Path) -> None:
    rows = {r["name"]: r for r in Cli(configured).json("tools", "list")}
    assert rows["crm.create_retention_offer"]["source"] == "reference"
    assert rows["crm.create_retention_offer"]["allowed_for"] == ["sales"]
    assert rows["pager.page"]["source"] == "entry_point:pager"
    assert rows["pager.page"]["allowed_for"] == ["operations"]
    assert set(rows["pager.page"]["schema"]["properties"]) == {"team", "message"}
    assert rows["desk.open_case"]["source"] == "mcp:desk"
    assert rows["desk.open_case"]["allowed_for"] == ["support"]
    assert rows["desk.case_count"]["side_effects"] is False
    assert rows["shop.create_credit"]["source"] == "openapi:shop"
    assert rows["shop.create_credit"]["allowed_for"] == []
    assert "shop.delete_account" not in rows
    assert {name: rows[name]["idempotency"] for name in (
        "crm.create_task", "pager.page", "desk.open_case", "shop.create_credit",
        "shop.get_account")} == {"crm.create_task": "recorded", "pager.page": "parameter",
                                 "desk.open_case": "parameter", "shop.create_credit": "header",
                                 "shop.get_account": "read"}
    only = Cli(configured).json("tools", "list", "--source", "mcp")
    assert {r["source"] for r in only} == {"mcp:desk"}
    table = Cli(configured)("tools", "list").stdout
    assert "desk.open_case" in table and "entry_point:pager" in table


def test_a_bad_server_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "decisionops.toml").write_text(
        '[[tool_servers]]\nname = "desk"\ntransport = "stdio"\nfunction = "support"\n')
    proc = Cli(tmp_path)("tools", "list", code=2)
    assert "tool_servers.0" in proc.stderr and "command" in proc.stderr


def test_a_settings_file_that_is_not_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    # Found in a black-box trial: a syntax error gave a 100-line traceback and exit 1.
    (tmp_path / "decisionops.toml").write_text("planner = 'playbook'\nholdout_share = \n")
    proc = Cli(tmp_path)("tools", "list", code=2)
    assert "decisionops.toml: not valid TOML" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_relative_paths_in_the_settings_file_are_read_from_its_folder(tmp_path: Path) -> None:
    # Found in a black-box trial: with DECISIONOPS_CONFIG naming a file elsewhere, its
    # relative paths were read from the working directory ("cannot read …").
    conf = tmp_path / "conf"
    conf.mkdir()
    functions = (Path(__file__).resolve().parents[2] / "agent" / "data" / "functions.yaml")
    (conf / "functions.yaml").write_text(functions.read_text())
    (conf / "decisionops.toml").write_text('functions_file = "functions.yaml"\n'
                                           'home = "state"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cli = Cli(elsewhere)
    cli.env.pop("DECISIONOPS_HOME", None)
    rows = cli.json("tools", "list", env={"DECISIONOPS_CONFIG": str(conf / "decisionops.toml")})
    assert any(r["name"] == "finance.issue_credit" for r in rows)
    cli("run", "--once", env={"DECISIONOPS_CONFIG": str(conf / "decisionops.toml")})
    assert (conf / "state").is_dir() and not (elsewhere / "state").exists()


BROKEN = """
name: bad-one
kind: fraud
trigger: {min_score: 0.5}
steps:
  - id: x
    function: sales
    tool: crm.no_such_tool
    arguments: {}
"""


@pytest.mark.parametrize("listing", [["playbooks", "list"], ["tools", "list"]])
def test_a_listing_says_what_run_would_refuse_to_start_with(cli: Cli, listing: list[str]
                                                            ) -> None:
    """(trial: a playbook naming an unknown tool listed fine, and only `run` refused it)"""
    folder = cli.cwd / "playbooks"
    folder.mkdir()
    (folder / "bad.yaml").write_text(BROKEN)
    cli.env["DECISIONOPS_PLAYBOOKS_DIR"] = str(folder)
    out = cli(*listing, code=2)
    said = " ".join(out.stderr.split())
    assert "'decisionops run' refuses to start with the" in said, said
    assert "playbook 'bad-one': steps.x.tool: unknown tool 'crm.no_such_tool'" in said
    assert "Traceback" not in out.stderr
    body = json.loads(cli(*listing, "--json", code=2).stdout)  # one document: the refusal
    assert body["error"]["field"] == "playbooks_dir"
    assert "crm.no_such_tool" in cli("run", "--once", code=2).stderr
    # coded as `run` codes it (trial 19: invalid_input here, bad_request there)
    ran = json.loads(cli("run", "--once", "--json", code=2).stdout.splitlines()[-1])
    assert body["error"]["code"] == ran["error"]["code"] == "bad_request"
    (folder / "bad.yaml").unlink()
    assert cli(*listing).stdout  # listed, and nothing refused
