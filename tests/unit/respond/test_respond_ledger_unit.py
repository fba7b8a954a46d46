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
from breakglass.respond.ledger import LedgerFenced, Signed, make_hot_engine
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


@pytest.mark.parametrize("hot", [False, True], ids=["async-engine", "hot-path-engine"])
async def test_a_claim_with_an_older_fencing_token_is_refused_and_changes_nothing(
    engine: AsyncEngine, url: str, hot: bool
) -> None:
    from breakglass.respond.ledger import LedgerFenced

    old, new = (
        Ledger(make_sessionmaker(engine), hot=make_hot_engine(url) if hot else None) for _ in range(2)
    )
    assert await old.claim(event("a"), "guardian", fence=3)
    assert await new.claim(event("b"), "guardian", fence=5)  # a replica took the lease over
    with pytest.raises(LedgerFenced) as refused:
        await old.claim(event("c"), "guardian", fence=3)
    assert (refused.value.token, refused.value.newest) == (3, 5)
    assert await old.history("c") == [] and not await new.is_claimed("c")
    assert await new.claim(event("d"), "guardian", fence=5)  # the newest token goes on
    assert await new.claim(event("e"), "guardian")  # one process without a lease is never fenced
    await new.load()
    assert not await new.is_claimed(":fence")  # the fence row is no idempotency key
    await old.close()
    await new.close()


async def test_concurrent_first_fenced_claims_leave_the_newest_token(engine: AsyncEngine, url: str) -> None:
    from breakglass.respond.ledger import LedgerFenced

    ledgers = [Ledger(make_sessionmaker(engine), hot=make_hot_engine(url)) for _ in range(4)]
    results = await asyncio.gather(
        *(ledger.claim(event(f"k{i}"), "guardian", fence=i + 1) for i, ledger in enumerate(ledgers)),
        return_exceptions=True,
    )
    assert all(r is True or isinstance(r, LedgerFenced) for r in results), results
    assert results[-1] is True  # the newest token is never refused
    with pytest.raises(LedgerFenced):
        await ledgers[0].claim(event("late"), "guardian", fence=3)
    for ledger in ledgers:
        await ledger.close()


@pytest.mark.parametrize("hot", [False, True], ids=["async-engine", "hot-path-engine"])
async def test_ledgers_of_two_chains_share_the_tables_not_their_rows_nonces_or_fences(
    engine: AsyncEngine, url: str, hot: bool
) -> None:
    """Several chains in one deployment: one ledger per chain over one store. Each reads back only
    its chain's rows (what a restart re-broadcasts, the next nonce of a key that signs on both), and
    each chain's lease has its own fencing tokens."""
    alpha, beta = (
        Ledger(make_sessionmaker(engine), hot=make_hot_engine(url) if hot else None, chain_id=chain)
        for chain in (31337, 31338)
    )
    signed = Signed(SIGNER, 7, "0x" + "ab" * 32, b"\x01")
    assert await alpha.claim(event("a"), "guardian", (event("a", ActionStep.SIGNED), signed), fence=9)
    assert await beta.claim(event("b"), "guardian", fence=2)  # beta's lease counts on its own
    assert not await beta.claim(event("a"), "guardian")  # keys stay global: exactly once
    assert await alpha.next_nonce(SIGNER) == 8 and await beta.next_nonce(SIGNER) is None
    assert await beta.open_keys(SIGNER) == [] and await alpha.open_keys(SIGNER) == ["a"]
    assert {r.key for r in await beta.rows()} == {"b"}
    everything = Ledger(make_sessionmaker(engine))  # a ledger of no chain (the API's) reads them all
    assert {(r.key, r.chain_id) for r in await everything.rows()} == {("a", 31337), ("b", 31338)}
    with pytest.raises(LedgerFenced):
        await beta.claim(event("c"), "guardian", fence=1)
    await alpha.close()
    await beta.close()


async def test_a_hot_claim_gets_in_between_other_writers_short_transactions(tmp_path: Path) -> None:
    """Another writer takes the SQLite write lock again and again (20 ms held, 3 ms free: the alert and
    incident stages' transactions). SQLite's own busy handler sleeps up to 100 ms between tries and
    misses the gaps (10 claims: slowest 631 ms measured); the hot path tries every millisecond."""
    import sqlite3
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    await create_tables(engine)
    stop = threading.Event()
    churns = [0]

    def churn() -> None:
        other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None, timeout=5)
        while not stop.is_set():
            other.execute("BEGIN IMMEDIATE")
            time.sleep(0.02)
            other.execute("COMMIT")
            churns[0] += 1
            time.sleep(0.003)
        other.close()

    writer = threading.Thread(target=churn)
    writer.start()
    ledger = Ledger(make_sessionmaker(engine), hot=make_hot_engine(url))
    waits: list[float] = []
    try:
        while churns[0] < 2:  # the churn is under way
            await asyncio.sleep(0.005)
        for i in range(10):
            started = time.perf_counter()
            assert await ledger.claim(event(f"k{i}"), "guardian")
            waits.append(time.perf_counter() - started)
    finally:
        stop.set()
        writer.join()
        await ledger.close()
        await engine.dispose()
    assert max(waits) < 0.4, waits
