"""The service tables: migration 0002 creates exactly what ``_service_tables`` declares
(and drops it again), and the store keeps only token digests."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, inspect

from decisionops.agent.store import Store, create_store_engine
from decisionops.agent.store import _service_tables as st
from decisionops.agent.store._tables import metadata

SERVICE_TABLES = {"users", "api_tokens", "webhook_deliveries", "chat_conversations",
                  "chat_messages", "holds", "edit_proposals"}


def test_migration_matches_the_table_definitions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store.open(url).close()
    engine = create_store_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= SERVICE_TABLES
        assert {t.name for t in (st.users, st.api_tokens, st.webhook_deliveries,
                                 st.chat_conversations, st.chat_messages, st.holds,
                                 st.edit_proposals)} == SERVICE_TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        ours = [d for d in diff if _table_of(d) in SERVICE_TABLES]
        assert ours == []
    finally:
        engine.dispose()


def test_downgrade_removes_the_service_tables(tmp_path: Path) -> None:
    from alembic import command

    from decisionops.agent.store._engine import _alembic_config

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    Store.open(url).close()
    engine = create_store_engine(url)
    try:
        command.downgrade(_alembic_config(engine), "0001")
        assert not SERVICE_TABLES & set(inspect(engine).get_table_names())
        command.upgrade(_alembic_config(engine), "head")
        assert set(inspect(engine).get_table_names()) >= SERVICE_TABLES
    finally:
        engine.dispose()


def _table_of(diff: object) -> str | None:
    """The table an autogenerate difference is about."""
    item = diff[0] if isinstance(diff, list) else diff
    for part in item if isinstance(item, tuple) else ():
        if isinstance(part, str) and part in SERVICE_TABLES:
            return part
        if isinstance(part, Table):
            return str(part.name)
        table = getattr(part, "table", None)
        if isinstance(table, Table):
            return str(table.name)
    return None
