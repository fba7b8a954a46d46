"""Databases for the store tests: every test here runs on SQLite and on PostgreSQL.

Each test module gets its own database (a SQLite file, or a PostgreSQL database created for it and
dropped after), migrated to head once; every test starts from empty tables.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.incidents.timeline import GENESIS, TimelineHead
from breakglass.store import migrate
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.tables import metadata

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _admin_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def fresh_database(request: pytest.FixtureRequest, backend: str, tmp: Path) -> Iterator[str]:
    """A new, empty database URL for ``backend``; a PostgreSQL database is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'breakglass.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_dsn(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database of each backend, one per test module."""
    yield from fresh_database(request, request.param, tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="module")
def migrated_url(db_url: str) -> str:
    migrate.upgrade(db_url)
    return db_url


@pytest.fixture
async def sessions(migrated_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A sessionmaker on the migrated database, its tables emptied before the test."""
    engine = make_engine(migrated_url)
    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
        await conn.execute(insert(TimelineHead).values(id=1, seq=0, hash=GENESIS))  # as migrated
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
