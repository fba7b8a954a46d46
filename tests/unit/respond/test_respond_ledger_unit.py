"""The ledger on SQLite and PostgreSQL: one claim per key, even among concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from breakglass.respond import ActionEvent, ActionStep, Ledger, create_tables
from breakglass.respond.ledger import Signed, make_hot_engine
from breakglass.store.db import make_engine, make_sessionmaker

SIGNER = "0x" + "11" * 20


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a PostgreSQL database created for the test and dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    admin = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bg_respond_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    await create_tables(engine)
    yield engine
    await engine.dispose()


def event(key: str, step: ActionStep = ActionStep.INTENT) -> ActionEvent:
    return ActionEvent(step, key, "pb", "pause", "venue.pause()", "fp", monitor_id="m")


@pytest.mark.parametrize("hot", [False, True], ids=["async-engine", "hot-path-engine"])
async def test_only_one_of_many_concurrent_claims_of_a_key_wins(
    engine: AsyncEngine, url: str, hot: bool
) -> None:
    # As if 8 processes shared the database, each with its own engines.
    ledgers = [Ledger(make_sessionmaker(engine), hot=make_hot_engine(url) if hot else None) for _ in range(8)]
    results = await asyncio.gather(*(ledger.claim(event("k"), "guardian") for ledger in ledgers))
    assert sorted(results) == [False] * 7 + [True]
    assert [r.step for r in await ledgers[0].history("k")] == ["intent"]
    assert all([await ledger.is_claimed("k") for ledger in ledgers])
    for ledger in ledgers:
        await ledger.close()


async def test_claim_with_a_signed_step_is_atomic_and_sets_the_next_nonce(engine: AsyncEngine) -> None:
    ledger = Ledger(make_sessionmaker(engine))
    signed = Signed(SIGNER, 41, "0x" + "ab" * 32, b"\x02raw")
    assert await ledger.claim(event("k"), "guardian", (event("k", ActionStep.SIGNED), signed))
    assert not await ledger.claim(event("k"), "guardian", (event("k", ActionStep.SIGNED), signed))
    assert await ledger.next_nonce(SIGNER) == 42 and await ledger.next_nonce("0x" + "22" * 20) is None
    assert await ledger.open_keys(SIGNER) == ["k"]
    await ledger.append(event("k", ActionStep.CONFIRMED))
    assert await ledger.open_keys(SIGNER) == []
    rows = await ledger.history("k")
    assert [r.step for r in rows] == ["intent", "signed", "confirmed"] and rows[1].raw_tx == "0x02726177"
