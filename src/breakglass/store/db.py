"""Database engine and the one declarative ``Base`` every table of breakglass derives from.

SQLite (WAL, foreign keys on, a busy timeout) by default; PostgreSQL through psycopg 3. Async engines,
so the pipeline's event loop never blocks on the store. Services take a session and never commit:
the caller owns the transaction.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import StaticPool

from breakglass.errors import StoreError
from breakglass.store.health import StoreHealth

__all__ = ["SCHEMA_HEAD", "Base", "Store", "async_url", "make_engine", "make_sessionmaker"]

SCHEMA_HEAD = "0009"
"""The newest migration's revision (``tests/db/test_migrations.py`` holds it to Alembic's head). A
store already there is not handed to Alembic: importing and running it was a sixth of ``serve``'s
start-up CPU, spent on every restart."""

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)


def async_url(url: str) -> str:
    """Map a plain URL to its async driver: sqlite -> aiosqlite, postgresql -> psycopg (v3)."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return pragmas


def make_engine(url: str, *, busy_timeout: float = 5.0, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; creates the folder of a SQLite file. ``busy_timeout``: seconds a
    SQLite statement waits for another connection's lock before 'database is locked'."""
    full = async_url(url)
    parsed = make_url(full)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_timeout))
        return engine
    return create_async_engine(full, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Store:
    """The application's database: one engine and its session factory (``app.components.store``).

    Constructing it does no I/O; ``upgrade()`` migrates the schema to head; ``close()`` disposes.
    ``health`` is the process's view of the database's availability, shared by every component that
    writes to it (``store/health.py``).
    """

    def __init__(self, url: str, *, health: StoreHealth | None = None, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout=busy_timeout)
        self.sessions = make_sessionmaker(self.engine)
        self.health = health or StoreHealth()
        # The readiness check's own connection: behind a burst of API reads holding every pooled one,
        # /readyz would wait for the pool past its timeout and say 503 with the store fine. An
        # in-memory SQLite is one connection's database, so there the check shares the engine.
        self._probe_engine = (
            self.engine
            if isinstance(self.engine.pool, StaticPool)
            else make_engine(url, busy_timeout=busy_timeout, pool_size=1, max_overflow=0)
        )
        self._probing: asyncio.Future[None] | None = None

    async def upgrade(self) -> None:
        """Migrate the schema to head (nothing to do, and Alembic not even imported, when it is there)."""
        if await self.at_head():
            return
        from breakglass.store.migrate import upgrade_async  # Alembic only when migrating

        await upgrade_async(self.url)

    async def at_head(self) -> bool:
        """Whether the schema is at ``SCHEMA_HEAD``; False for a new store, or one that does not answer
        (Alembic then creates the schema, or raises the store's error)."""
        try:
            async with self.engine.connect() as conn:
                version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except SQLAlchemyError:
            return False
        return version == SCHEMA_HEAD

    async def check_writable(self) -> None:
        """Raise unless the store answers, is migrated and would take a write (readiness: ``store``).

        No write lock is taken (a probe every few seconds must never make a containment's claim wait):
        the schema version is read, and then PostgreSQL is asked whether this session is read-only (a
        standby, a read-only user), SQLite whether the database file and its folder are writable.

        On a connection of its own, outside the pool the pipeline and the API read and write through,
        so that neither starves the other; callers that come while a check runs share its answer (a
        burst of probes asks the database once, and one waits on the single connection for nobody).
        Nothing is cached past that: the next call asks the database again, and a dead connection is
        found by the pre-ping (PostgreSQL) before the check uses it."""
        probing = self._probing
        if probing is None or probing.done() or probing.get_loop() is not asyncio.get_running_loop():
            self._probing = probing = asyncio.ensure_future(self._check_writable())
            probing.add_done_callback(_retrieved)
        # shielded: a caller that gives up (the probe's timeout) leaves the check to the others
        await asyncio.shield(probing)

    async def _check_writable(self) -> None:
        async with self._probe_engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            if not version:
                raise StoreError("the store is not migrated (alembic_version is empty)")
            if conn.dialect.name == "postgresql":
                read_only = (await conn.execute(text("SHOW transaction_read_only"))).scalar()
                if read_only == "on":
                    raise StoreError("the store is read-only (transaction_read_only = on)")
        database = make_url(self.engine.url).database if self.engine.dialect.name == "sqlite" else None
        if database and database != ":memory:":
            path = Path(database)
            if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                raise StoreError(f"the SQLite file {path.name} or its folder is not writable")

    async def close(self) -> None:
        await self.health.close()
        if self._probing is not None and not self._probing.done():
            self._probing.cancel()
        if self._probe_engine is not self.engine:
            await self._probe_engine.dispose()
        await self.engine.dispose()


def _retrieved(check: asyncio.Future[None]) -> None:
    """Mark a shared check's error as seen: every caller may have given up on it (asyncio would log
    'exception was never retrieved')."""
    if not check.cancelled():
        check.exception()
