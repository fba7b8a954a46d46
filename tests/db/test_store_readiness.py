"""The store's readiness check (``Store.check_writable``, ``/readyz``'s ``store``) on its own connection:
it answers while the pool that the pipeline and the API share is taken to the last connection, a burst
of checks asks the database once, and a store that is gone still fails it though the check's
connection was open."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from breakglass.errors import StoreError
from breakglass.store import migrate
from breakglass.store.db import Store
from breakglass.testing import postgres_database


async def _take_the_pool(store: Store) -> list[AsyncConnection]:
    """Every connection the shared pool lends (its size and its overflow), held."""
    pool: Any = store.engine.pool
    held = [await store.engine.connect() for _ in range(pool.size() + pool._max_overflow)]
    assert pool.checkedout() == len(held) and pool.overflow() == pool._max_overflow
    return held


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while the test runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def test_the_check_answers_while_every_pooled_connection_is_taken(migrated_url: str) -> None:
    store = Store(migrated_url)
    held = await _take_the_pool(store)
    try:
        # the shared pool would make a checkout wait 30 s for a connection to come back
        await asyncio.wait_for(store.check_writable(), 5)
    finally:
        for conn in held:
            await conn.close()
        await store.close()


async def test_checks_that_come_together_ask_the_database_once(
    migrated_url: str, statements: list[str]
) -> None:
    store = Store(migrated_url)
    try:
        await asyncio.gather(*(store.check_writable() for _ in range(20)))
        assert sum("alembic_version" in s for s in statements) == 1
        await store.check_writable()  # nothing kept: a later check asks again
        assert sum("alembic_version" in s for s in statements) == 2
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_postgres_store_gone_fails_the_check_though_its_connection_was_open(
    postgres_url: str,
) -> None:
    with postgres_database(postgres_url) as url:
        await migrate.upgrade_async(url)
        store = Store(url)
        try:
            await store.check_writable()  # its connection is open in its pool now
            _drop(postgres_url, str(make_url(url).database))
            with pytest.raises(OperationalError):
                await asyncio.wait_for(store.check_writable(), 10)
        finally:
            await store.close()


async def test_a_sqlite_store_whose_file_is_gone_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    await migrate.upgrade_async(f"sqlite:///{path}")
    store = Store(f"sqlite:///{path}")
    try:
        await store.check_writable()  # its connection is open in its pool now (reads the unlinked file)
        os.remove(path)
        with pytest.raises(StoreError, match="not writable"):
            await store.check_writable()
    finally:
        await store.close()


def _drop(server_url: str, database: str) -> None:
    import psycopg

    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
