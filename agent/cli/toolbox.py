"""``decisionops tools``: the tool catalogue — each tool, where it comes from
(``reference``, ``entry_point:<name>``, ``mcp:<server>``, ``openapi:<name>``), the
business functions whose allow-list names it, and its JSON schema. Builds the registry
as the runtime does (MCP servers are connected to list their tools); no store is opened."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column

from decisionops.agent.cli._common import fail, print_json, print_table, settings
from decisionops.agent.errors import ConfigError, status_for
from decisionops.agent.playbooks import PlaybookBook, load_playbooks
from decisionops.agent.policy import Policies, load_policies

if TYPE_CHECKING:
    from decisionops.agent.settings import Settings
    from decisionops.tools.registry import ToolRegistry

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The tools plans may use, from every source.\n\n"
                  "Example: decisionops tools list --json")


@contextmanager
def built_registry() -> Iterator[tuple[Settings, Policies, ToolRegistry]]:
    """The settings, the function policies and the tool registry as the runtime builds
    them (MCP servers connected, to list their tools; no store opened)."""
    from decisionops.tools.enterprise import Enterprise  # the composition root's imports, lazily
    from decisionops.tools.sources import build_tool_registry

    s = settings()
    try:
        policies = load_policies(s.functions_file)
        s.home.mkdir(parents=True, exist_ok=True)
        with Enterprise(s.resolved_enterprise_url) as enterprise:
            built = build_tool_registry(s, enterprise)
    except ConfigError as exc:
        raise fail(exc.message, status=status_for(exc), field=exc.details.get("field")) from None
    try:
        yield s, policies, built.registry
    finally:
        built.close()


def refuse_if_run_would(what: str, s: Settings, policies: Policies, registry: ToolRegistry,
                        book: PlaybookBook | None = None) -> None:
    """After a listing of configuration: the checks `run` makes at its start
    (``runtime.check_start``), with the registry the listing built, so what lists fine
    but would not start says so, naming the problem, exit 2 (trial: a broken playbook
    listed without a word, and only `run` refused it)."""
    from decisionops.agent.runtime import check_start

    try:
        check_start(policies, book or load_playbooks(s.playbooks_dir), registry.specs(),
                    functions_file=s.functions_file, settings=s)
    except ConfigError as exc:
        raise fail(f"'decisionops run' refuses to start with {what}: {exc.message}",
                   status=status_for(exc), field=exc.details.get("field")) from None


def _rows(policies: Policies, registry: ToolRegistry, source: str | None
          ) -> list[dict[str, Any]]:
    """One row per tool (what ``tools list --json`` prints)."""
    rows = [{
        "name": spec.name, "source": registry.source_of(spec.name), "owner": spec.function,
        "allowed_for": sorted(f for f, p in policies.functions.items() if spec.name in p.tools),
        "risk": spec.risk.value, "side_effects": spec.side_effects,
        "idempotency": (registry.key_via(spec.name) if spec.side_effects else "read"),
        "targets": list(spec.targets), "description": spec.description,
        "schema": spec.parameters} for spec in registry.specs()]
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
    with built_registry() as (s, policies, registry):
        rows = _rows(policies, registry, source)
        if as_json:  # one JSON document: the refusal alone, when there is one
            refuse_if_run_would("the tools", s, policies, registry)
            print_json(rows)
            return
        print_table("Tools", [Column("tool", no_wrap=True), Column("source", no_wrap=True),
                              Column("allowed for", overflow="fold", min_width=7),
                              Column("risk", no_wrap=True),
                              Column("acts", no_wrap=True), Column("key", no_wrap=True)],
                    [(r["name"], r["source"], " ".join(r["allowed_for"]) or "-", r["risk"],
                      "yes" if r["side_effects"] else "read", r["idempotency"])
                     for r in rows], empty="no tools")
        refuse_if_run_would("the tools", s, policies, registry)
