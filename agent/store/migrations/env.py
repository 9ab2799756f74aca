"""Alembic environment: runs against the engine the store hands over.

On PostgreSQL the migration holds an advisory lock, so workers starting together
migrate once and the others wait for it.
"""

from alembic import context
from sqlalchemy import text

from decisionops.agent.store._tables import metadata

_MIGRATION_LOCK = 7_243_011

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
