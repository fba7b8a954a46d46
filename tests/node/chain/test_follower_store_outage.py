"""The follower while its store is locked by another connection: blocks keep coming, none is lost or
written twice, a reorg meanwhile is handled from the unwritten rows (issue 20)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil
from breakglass.store.db import Base, make_engine, make_sessionmaker
from breakglass.store.health import StoreHealth
from breakglass.testing import RecordingHandler as Recorder
from breakglass.testing import SqliteLock, wait_until

pytestmark = pytest.mark.node


@dataclass
class Setup:
    db: Path
    checkpoints: CheckpointStore
    health: StoreHealth
    recorder: Recorder
    follower: Follower


@pytest.fixture
async def setup(anvil: Anvil, tmp_path: Path) -> AsyncIterator[Setup]:
    db = tmp_path / "cursor.db"
    # a short busy timeout only to keep the test short: the follower does not depend on its length
    engine = make_engine(f"sqlite:///{db}", busy_timeout=0.3)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    checkpoints, health, recorder = CheckpointStore(make_sessionmaker(engine)), StoreHealth(), Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0, poll_interval=0.05,
                        health=health)  # fmt: skip
    yield Setup(db, checkpoints, health, recorder, follower)
    await rpc.close()
    await engine.dispose()


async def stored(checkpoints: CheckpointStore) -> list[int]:
    return [n for n, _h, _o in await checkpoints.processed(31337)]


async def test_a_locked_store_neither_stops_the_follower_nor_loses_a_checkpoint(
    anvil: Anvil, setup: Setup
) -> None:
    follower, recorder, health = setup.follower, setup.recorder, setup.health
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    anvil.mine(5)
    await wait_until(lambda: recorder.numbers[-1:] == [5] and not follower.backlog)
    async with SqliteLock(setup.db):
        anvil.mine(10)
        await wait_until(lambda: recorder.numbers[-1:] == [15], what="blocks handled while locked")
        await wait_until(lambda: not health.available, what="the outage noticed")
        assert not task.done() and follower.backlog
        # a reorg while nothing can be written: the orphans are still in the backlog
        accounts = anvil.rpc("eth_accounts")
        anvil.rpc("anvil_reorg", 3, [[{"from": accounts[2], "to": accounts[3], "value": "0x7"}, 1]])
        anvil.mine(2)
        await wait_until(
            lambda: follower.reorgs == 1 and recorder.numbers[-1:] == [17], what="the new branch"
        )
        assert await stored(setup.checkpoints) == list(range(6))  # the store took nothing meanwhile
    await wait_until(lambda: health.available and not follower.backlog, what="the backlog written")
    stop.set()
    await task
    assert sorted(c.number for c in recorder.orphaned) == [13, 14, 15]
    canonical = await setup.checkpoints.processed(31337)
    assert [n for n, _h, _o in canonical] == list(range(18))  # every block once
    for number, block_hash, _ in canonical:
        assert anvil.rpc("eth_getBlockByNumber", hex(number), False)["hash"] == block_hash
    everything = await setup.checkpoints.processed(31337, include_orphaned=True)
    orphans = {(n, h) for n, h, o in everything if o}
    assert sorted(n for n, _h in orphans) == [13, 14, 15]  # recorded as orphaned, never lost
    assert orphans == {(c.number, c.hash) for c in recorder.orphaned}
    assert len(everything) == 21 and health.outages == 1


async def test_started_while_the_store_is_locked_it_follows_and_writes_once_released(
    anvil: Anvil, setup: Setup
) -> None:
    follower, recorder = setup.follower, setup.recorder
    anvil.mine(3)
    stop = asyncio.Event()
    async with SqliteLock(setup.db, process=True):  # another process holds the lock before the start
        task = asyncio.create_task(follower.run(stop))
        anvil.mine(5)
        await wait_until(lambda: recorder.numbers[-1:] == [8], what="blocks handled while locked")
        await wait_until(lambda: not setup.health.available)
        assert await stored(setup.checkpoints) == []
    await wait_until(lambda: not follower.backlog, what="the backlog written")
    stop.set()
    await task
    assert recorder.numbers == list(range(9))
    assert await stored(setup.checkpoints) == list(range(9))
