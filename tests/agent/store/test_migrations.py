"""The migrations and the table definitions agree, and the known head is the scripts'."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from agent.store import Store
from agent.store._engine import HEAD_REVISION, current_revision, head_revision
from agent.store._tables import metadata


def test_known_head_is_the_scripts_head() -> None:
    assert head_revision() == HEAD_REVISION


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrated_schema_matches_the_table_definitions(request: pytest.FixtureRequest,
                                                       tmp_path: Path, backend: str) -> None:
    url = (request.getfixturevalue("pg_url") if backend == "postgres"
           else f"sqlite:///{tmp_path / 's.sqlite'}")
    store = Store.open(url)
    try:
        assert current_revision(store.engine) == HEAD_REVISION
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()
