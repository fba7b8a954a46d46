"""A backfill fetches the windows within the handler's state horizon first (their state reads are
what the node serves slowest), hands every block over in order all the same, and a reorg of those
windows between their early fetch and their handling is noticed like any other: nothing missed,
nothing left canonical that the node replaced."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil
from breakglass.domain import Block
from breakglass.testing import RecordingHandler

pytestmark = pytest.mark.node


class Horizon(RecordingHandler):
    """A handler that reads state within ``state_horizon`` blocks of the head, as the engine does:
    records, for every window it prepares, how many blocks had been handled by then."""

    def __init__(self, state_horizon: int) -> None:
        super().__init__()
        self.state_horizon = state_horizon
        self.prepared: list[tuple[int, int]] = []
        """(first block of the window, blocks handled when it was prepared)"""

    async def prepare(self, blocks: Sequence[Block]) -> None:
        self.prepared.append((blocks[0].number, len(self.blocks)))


async def test_the_windows_within_the_state_horizon_are_fetched_first_and_handled_in_order(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(80)  # blocks 0..80
    handler = Horizon(state_horizon=12)
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, handler, chain_id=31337, start_block=0, batch_blocks=5, prefetch=2)
    assert await follower.step() == 81
    assert handler.numbers == list(range(81))  # in order, each once
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(81))
    when = dict(handler.prepared)
    assert sorted(when) == list(range(0, 81, 5))  # every window prepared once
    # the windows whose last block is within 12 of the head (65.., 70.., 75.., 80) were fetched and
    # prepared before the handler got past the first windows; the middle ones only as it came near
    for first in (65, 70, 75, 80):
        assert when[first] <= 10, handler.prepared
    assert when[40] >= 25, handler.prepared
    await rpc.close()


async def test_no_read_ahead_for_a_handler_without_a_state_horizon_or_a_range_within_the_prefetch(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(40)
    rpc = RpcClient.from_urls([anvil.url])
    plain = RecordingHandler()
    follower = Follower(rpc, checkpoints, plain, chain_id=31337, start_block=0, batch_blocks=5, prefetch=2)
    follower.head = 40
    windows = [list(range(s, min(s + 5, 41))) for s in range(0, 41, 5)]
    assert follower._read_ahead(windows) == []
    follower.handler = Horizon(state_horizon=12)
    assert follower._read_ahead(windows) == [5, 6, 7, 8]  # 25..29 ends 11 below the head, 20..24 16
    assert follower._read_ahead(windows[:2]) == []  # the prefetch takes them anyway
    await rpc.close()


class ReorgMidway(Horizon):
    """Replaces the last ``depth`` blocks on the node while handling block ``at``: after the read-ahead
    fetched them, before they are handled."""

    def __init__(self, node: Anvil, at: int, depth: int) -> None:
        super().__init__(state_horizon=20)
        self.node, self.at, self.depth = node, at, depth

    async def on_block(self, block: Block) -> int:
        if block.number == self.at:
            accounts = self.node.rpc("eth_accounts")
            replacement = {"from": accounts[2], "to": accounts[3], "value": "0x7"}
            self.node.rpc("anvil_reorg", self.depth, [[replacement, 1]])
        return await super().on_block(block)


async def test_a_reorg_of_the_read_ahead_windows_before_their_handling_misses_nothing(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(60)  # blocks 0..60
    handler = ReorgMidway(anvil, at=20, depth=4)  # 57..60 replaced while block 20 is handled
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, handler, chain_id=31337, start_block=0, batch_blocks=5, prefetch=2)
    old = {n: anvil.rpc("eth_getBlockByNumber", hex(n), False)["hash"] for n in range(57, 61)}
    await follower.step()
    assert handler.prepared and dict(handler.prepared)[55] <= 10  # the tail really was read ahead
    anvil.mine(2)  # the new branch grows: its next block's parent reveals the replaced tail
    for _ in range(4):
        await follower.step()
    assert follower.reorgs >= 1
    assert {c.number: c.hash for c in handler.orphaned} == old  # exactly the replaced blocks retracted
    canonical = await checkpoints.processed(31337)
    assert [n for n, _h, _o in canonical] == list(range(63))  # none missed
    for number, block_hash, _ in canonical:
        assert anvil.rpc("eth_getBlockByNumber", hex(number), False)["hash"] == block_hash
    handled = {b.hash for b in handler.blocks}
    assert all(h in handled for _n, h, _o in canonical)  # every canonical block was handled
    await rpc.close()
