"""Alembic environment: async engines (aiosqlite, psycopg 3), batch mode so SQLite can alter tables."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

import breakglass.store.tables  # noqa: F401  (registers every table on Base.metadata)
from breakglass.store.db import Base, async_url, make_engine

config = context.config
_url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not _url:
    raise RuntimeError("no database URL: call breakglass.store.migrate with one")
url: str = str(_url)


MIGRATION_LOCK = 0x62676D67  # "bgmg": PostgreSQL advisory lock key held while migrating


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # several processes (serve --role ...) start at once on one store: one migrates, the
            # others wait here and then find the schema at head (the version is read after the lock)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


async def _online() -> None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=async_url(url), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
