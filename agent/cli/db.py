"""``decisionops db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from decisionops.agent.cli._common import console, print_json, settings
from decisionops.agent.store import create_store_engine, current_revision, head_revision, upgrade

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Database schema.\n\nExample: decisionops db upgrade")


@app.command("upgrade")
def upgrade_() -> None:
    """Migrate the store's schema to the newest revision (safe to repeat).

    Example: DECISIONOPS_DATABASE_URL=postgresql+psycopg://… decisionops db upgrade
    """
    engine = create_store_engine(settings().resolved_database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        console.print(f"schema at {head_revision()} (was {before or 'empty'})")
    finally:
        engine.dispose()


@app.command("current")
def current(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False
            ) -> None:
    """Show the schema revision of the store and the newest this build knows.

    Example: decisionops db current
    """
    engine = create_store_engine(settings().resolved_database_url)
    try:
        info = {"current": current_revision(engine), "head": head_revision()}
    finally:
        engine.dispose()
    if as_json:
        print_json(info)
    else:
        console.print(f"current {info['current'] or 'empty'}, head {info['head']}")
