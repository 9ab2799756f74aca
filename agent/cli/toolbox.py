"""``decisionops tools``: the tool catalogue — each tool, where it comes from
(``reference``, ``entry_point:<name>``, ``mcp:<server>``, ``openapi:<name>``), the
business functions whose allow-list names it, and its JSON schema. Builds the registry
as the runtime does (MCP servers are connected to list their tools); no store is opened."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Column

from decisionops.agent.cli._common import (
    fail,
    print_json,
    print_table,
    refuse_if_run_would,
    settings,
)
from decisionops.agent.errors import ConfigError
from decisionops.agent.policy import load_policies

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The tools plans may use, from every source.\n\n"
                  "Example: decisionops tools list --json")


def catalogue(source: str | None = None) -> list[dict[str, Any]]:
    """One row per tool (what ``tools list --json`` prints)."""
    from decisionops.tools.enterprise import Enterprise  # the composition root's imports, lazily
    from decisionops.tools.sources import build_tool_registry

    s = settings()
    try:
        policies = load_policies(s.functions_file)
        s.home.mkdir(parents=True, exist_ok=True)
        with Enterprise(s.resolved_enterprise_url) as enterprise:
            built = build_tool_registry(s, enterprise)
    except ConfigError as exc:
        raise fail(exc.message) from None
    try:
        registry = built.registry
        rows = []
        for spec in registry.specs():
            rows.append({
                "name": spec.name, "source": registry.source_of(spec.name),
                "owner": spec.function,
                "allowed_for": sorted(f for f, p in policies.functions.items()
                                      if spec.name in p.tools),
                "risk": spec.risk.value, "side_effects": spec.side_effects,
                "idempotency": (registry.key_via(spec.name) if spec.side_effects else "read"),
                "targets": list(spec.targets), "description": spec.description,
                "schema": spec.parameters})
    finally:
        built.close()
    if source is not None:
        rows = [r for r in rows if r["source"] == source or r["source"].startswith(f"{source}:")]
    return rows


@app.command("list")
def list_(source: Annotated[str | None, typer.Option(
              help="Only tools of this source: reference, entry_point, mcp, openapi, or one "
                   "exactly (mcp:desk).")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (with each "
                                                "tool's JSON schema).")] = False) -> None:
    """Each tool: its source, the functions whose allow-list names it (a tool no function
    allows is never planned), its risk, whether it changes something, how it receives the
    idempotency key (recorded, parameter, header; none: a re-run after a crash between
    the call and its record may repeat it); with --json also its arguments' schema.

    Example: decisionops tools list

    Example: decisionops tools list --source mcp --json
    """
    rows = catalogue(source)
    if as_json:  # one JSON document: the refusal alone, when there is one
        refuse_if_run_would("the tools")
        print_json(rows)
        return
    print_table("Tools", [Column("tool", no_wrap=True), Column("source", no_wrap=True),
                          Column("allowed for", overflow="fold", min_width=7),
                          Column("risk", no_wrap=True),
                          Column("acts", no_wrap=True), Column("key", no_wrap=True)],
                [(r["name"], r["source"], " ".join(r["allowed_for"]) or "-", r["risk"],
                  "yes" if r["side_effects"] else "read", r["idempotency"])
                 for r in rows], empty="no tools")
    refuse_if_run_would("the tools")
