"""The migrations build exactly the schema the models declare, and go down and up again cleanly."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from breakglass.store import migrate
from breakglass.store.db import SCHEMA_HEAD, make_engine
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


def test_schema_head_names_the_newest_migration() -> None:
    assert migrate.head() == SCHEMA_HEAD  # a new migration bumps SCHEMA_HEAD (store/db.py)


def test_a_store_already_at_head_is_not_handed_to_alembic(db_url: str) -> None:
    """serve's restart: one read of alembic_version, Alembic not even imported (start-up time)."""
    migrate.upgrade(db_url)
    script = (
        "import asyncio, sys\n"
        "from breakglass.store.db import Store\n"
        "store = Store(sys.argv[1])\n"
        "asyncio.run(store.upgrade())\n"
        "asyncio.run(store.engine.dispose())\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, db_url], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


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


def test_every_table_of_the_package_is_registered_in_store_tables() -> None:
    """A table defined anywhere must be imported by ``breakglass.store.tables``, or Alembic would
    not see it. Checked in a fresh interpreter: tables alone, then after importing every module."""
    script = (
        "import importlib, pkgutil, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import breakglass\n"
        "from breakglass.store.tables import metadata\n"
        "registered = set(metadata.tables)\n"
        "for info in pkgutil.walk_packages(breakglass.__path__, prefix='breakglass.'):\n"
        "    if '.migrations' not in info.name and not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "print(sorted(set(metadata.tables) - registered))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    unregistered = result.stdout.strip()
    assert unregistered == "[]", f"tables missing from breakglass/store/tables.py: {unregistered}"
