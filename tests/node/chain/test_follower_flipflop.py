"""A flip-flop reorg on real anvils: the chain goes to branch B and back to branch A, the same blocks
with the same hashes as before (two competing branches). The follower must neither stop nor lose a
block: A's rows, orphaned by the first reorg, are canonical again, recorded once each, B's orphaned.

One anvil keeps branch A; a second one, forked from it below the fork point, mines branch B; the
follower is pointed at one and then the other, as a node pool whose nodes disagree would do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from breakglass.chain.checkpoint import BlockRow, CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil
from breakglass.domain import Block
from breakglass.store.db import Base, make_engine, make_sessionmaker
from breakglass.testing import RecordingHandler, SqliteLock, wait_until

pytestmark = pytest.mark.node


class Counting(RecordingHandler):
    """Reports as findings how many times it was handed a block of that hash (1, then 2 when the
    block is canonical again), so the row written last is told apart."""

    async def on_block(self, block: Block) -> int:
        await super().on_block(block)
        return sum(b.hash == block.hash for b in self.blocks)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Path, CheckpointStore]]:
    db = tmp_path / "cursor.db"
    engine = make_engine(f"sqlite:///{db}", busy_timeout=0.3)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db, CheckpointStore(make_sessionmaker(engine))
    await engine.dispose()


def hashes(node: Anvil, last: int) -> list[str]:
    return [str(node.rpc("eth_getBlockByNumber", hex(n), False)["hash"]) for n in range(last + 1)]


def branches(anvil: Anvil, anvil_factory: Callable[..., Anvil]) -> Anvil:
    """``anvil`` at block 10 (branch A), and a node forked from it at block 7 at block 11 (branch B)."""
    anvil.mine(7)
    other = anvil_factory(fork_url=anvil.url, fork_block=7)
    anvil.mine(3)
    accounts = other.rpc("eth_accounts")
    other.rpc("eth_sendTransaction", {"from": accounts[2], "to": accounts[3], "value": "0x7"})
    other.mine(3)
    a, b = hashes(anvil, 10), hashes(other, 11)
    assert a[:8] == b[:8] and all(a[n] != b[n] for n in range(8, 11))
    return other


async def check(checkpoints: CheckpointStore, recorder: Counting, a: list[str], b: list[str]) -> None:
    """Exactly branch A recorded as canonical, each of B's blocks once as orphaned."""
    canonical = await checkpoints.processed(31337)
    assert [(n, h) for n, h, _o in canonical] == list(enumerate(a))
    everything = await checkpoints.processed(31337, include_orphaned=True)
    assert sorted((n, h) for n, h, o in everything if o) == [(n, b[n]) for n in range(8, 12)]
    assert [(c.number, c.hash) for c in recorder.orphaned] == [
        *((n, a[n]) for n in (10, 9, 8)),
        *((n, b[n]) for n in (11, 10, 9, 8)),
    ]


async def findings(engine_store: CheckpointStore) -> dict[tuple[int, str], int]:
    async with engine_store._sessions() as session:
        rows = await session.execute(select(BlockRow.number, BlockRow.hash, BlockRow.findings))
        return {(n, h): f for n, h, f in rows}


async def to_b_and_back(follower: Follower, anvil: Anvil, on_a: RpcClient, on_b: RpcClient) -> None:
    """The flip-flop: A's blocks, the reorg to B and its blocks, A longer again and the reorg back
    (the comments say what the store holds when nothing locks it)."""
    await follower.step()  # A's 0..10 written
    follower.rpc = on_b
    await follower.step()  # reorg: A's 8..10 marked orphaned in the store
    await follower.step()  # B's 8..11 written
    anvil.mine(2)  # A is longer again: 12
    follower.rpc = on_a
    await follower.step()  # reorg back: B's rows orphaned


async def test_a_flip_flop_reorg_over_written_rows_records_branch_a_canonical_again(
    anvil: Anvil, anvil_factory: Callable[..., Anvil], store: tuple[Path, CheckpointStore]
) -> None:
    _db, checkpoints = store
    other = branches(anvil, anvil_factory)
    on_a, on_b = RpcClient.from_urls([anvil.url]), RpcClient.from_urls([other.url])
    recorder = Counting()
    follower = Follower(on_a, checkpoints, recorder, chain_id=31337, start_block=0)
    try:
        await to_b_and_back(follower, anvil, on_a, on_b)
        await follower.step()  # A's 8..12 again: the rows of 8..10 exist, orphaned
        assert follower.reorgs == 2 and not follower.backlog
        a, b = hashes(anvil, 12), hashes(other, 11)
        await check(checkpoints, recorder, a, b)
        recorded = await findings(checkpoints)
        assert [recorded[n, a[n]] for n in range(8, 13)] == [2, 2, 2, 1, 1]  # as handled last
        assert len(recorded) == 13 + 4
    finally:
        await on_a.close()
        await on_b.close()


async def test_a_flip_flop_reorg_within_unwritten_rows_records_branch_a_canonical_again(
    anvil: Anvil, anvil_factory: Callable[..., Anvil], store: tuple[Path, CheckpointStore]
) -> None:
    db, checkpoints = store
    other = branches(anvil, anvil_factory)
    on_a, on_b = RpcClient.from_urls([anvil.url]), RpcClient.from_urls([other.url])
    recorder = Counting()
    follower = Follower(on_a, checkpoints, recorder, chain_id=31337, start_block=0)
    try:
        async with SqliteLock(db):  # nothing can be written: both reorgs are handled in the backlog
            await to_b_and_back(follower, anvil, on_a, on_b)
            await follower.step()
            assert follower.reorgs == 2
            # the last write attempt ends (locked) before the release: one write of the whole backlog
            await wait_until(lambda: follower._writing is None or follower._writing.done())
            assert await checkpoints.processed(31337, include_orphaned=True) == []
        a, b = hashes(anvil, 12), hashes(other, 11)
        assert [(n, h) for n, h, _p, _f in follower.backlog] == [
            *enumerate(a[:11]),  # 8..10 retracted
            *((n, b[n]) for n in range(8, 12)),  # retracted
            *((n, a[n]) for n in range(8, 13)),  # 8..10 again: the same blocks twice in one batch
        ]
        await follower.settle()
        assert not follower.backlog
        await check(checkpoints, recorder, a, b)
        recorded = await findings(checkpoints)
        assert [recorded[n, a[n]] for n in range(8, 13)] == [2, 2, 2, 1, 1]
        assert len(recorded) == 13 + 4
    finally:
        await on_a.close()
        await on_b.close()
