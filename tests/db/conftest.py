"""Databases for the store tests: every test here runs on SQLite and on PostgreSQL.

Each test module gets its own database (a SQLite file, or a PostgreSQL database created for it and
dropped after), migrated to head once; every test starts from empty tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.store import migrate
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.testing import empty_store, postgres_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def fresh_database(request: pytest.FixtureRequest, backend: str, tmp: Path) -> Iterator[str]:
    """A new, empty database URL for ``backend``; a PostgreSQL database is dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'breakglass.db'}"
        return
    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


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
    await empty_store(engine)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
