"""The migrations build exactly the schema the models declare, and go down and up again cleanly."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from breakglass.store import migrate
from breakglass.store.db import make_engine
from breakglass.store.tables import metadata


async def _schema(url: str) -> tuple[list[Any], set[str]]:
    """(differences between database and metadata, table names) for ``url``."""
    engine = make_engine(url, poolclass=NullPool)

    def inspect_sync(conn: Connection) -> tuple[list[Any], set[str]]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata), set(inspect(conn).get_table_names())

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


async def test_upgrade_to_head_builds_exactly_the_declared_schema(db_url: str) -> None:
    await migrate.upgrade_async(db_url)
    diff, tables = await _schema(db_url)
    assert diff == []
    assert set(metadata.tables) <= tables
    assert await migrate.current_async(db_url) == migrate.head()


async def test_downgrade_to_base_removes_every_table_and_upgrade_restores_them(db_url: str) -> None:
    await migrate.upgrade_async(db_url)
    await migrate.downgrade_async(db_url, "base")
    _, tables = await _schema(db_url)
    assert tables - {"alembic_version"} == set()
    assert await migrate.current_async(db_url) is None
    await migrate.upgrade_async(db_url)
    diff, tables = await _schema(db_url)
    assert diff == []
    assert set(metadata.tables) <= tables
