"""The mempool watcher on a real anvil holding transactions: every pending tx handed over once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from breakglass.chain.mempool import MempoolWatcher
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil, BlockMode
from breakglass.domain import PendingTx

pytestmark = pytest.mark.node

ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BOB = "0x70997970C51812Dc3A010C7d01b50e0D4dc79C8E"


def send(node: Anvil, value: int, tip_gwei: int = 1) -> str:
    tx = {"from": ALICE, "to": BOB, "value": hex(value), "maxPriorityFeePerGas": hex(tip_gwei * 10**9),
          "maxFeePerGas": hex(100 * 10**9), "input": "0xdeadbeef"}  # fmt: skip
    return str(node.rpc("eth_sendTransaction", tx))


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("use_ws", [True, False], ids=["subscription", "txpool-polling"])
async def test_every_pending_transaction_is_handed_over_once_with_its_body(
    anvil_factory: Callable[..., Anvil], use_ws: bool
) -> None:
    node = anvil_factory(mode=BlockMode.MANUAL)
    seen: list[PendingTx] = []

    async def handler(ptx: PendingTx) -> None:
        seen.append(ptx)

    rpc = RpcClient.from_urls([node.url])
    watcher = MempoolWatcher(rpc, handler, ws_url=node.ws_url if use_ws else None, poll_interval=0.05)
    task = asyncio.create_task(watcher.run())
    try:
        if use_ws:
            await asyncio.wait_for(watcher.subscribed.wait(), 10)
        hashes = [await asyncio.to_thread(send, node, v, tip) for v, tip in ((1, 1), (2, 7), (3, 2))]
        await wait_for(lambda: len(seen) >= 3)
        # Both paths together (subscription plus a catch-up poll) still give each tx once.
        assert await watcher.poll_once() == 0
        assert [p.tx.hash for p in seen] == hashes
        second = seen[1].tx
        assert second.sender == ALICE and second.to == BOB and second.value == 2
        assert second.input == bytes.fromhex("deadbeef")
        assert second.max_priority_fee_per_gas == 7 * 10**9
        assert all(p.seen_at_ms > 0 for p in seen)
        assert int(node.rpc("eth_blockNumber"), 16) == 0  # still pending: seen before inclusion
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await rpc.close()


async def test_falls_back_to_polling_when_the_websocket_is_unreachable(
    anvil_factory: Callable[..., Anvil],
) -> None:
    node = anvil_factory(mode=BlockMode.MANUAL)
    seen: list[PendingTx] = []

    async def handler(ptx: PendingTx) -> None:
        seen.append(ptx)

    rpc = RpcClient.from_urls([node.url])
    watcher = MempoolWatcher(rpc, handler, ws_url="ws://127.0.0.1:9", poll_interval=0.05)
    task = asyncio.create_task(watcher.run())
    try:
        tx = await asyncio.to_thread(send, node, 5)
        await wait_for(lambda: len(seen) == 1)
        assert seen[0].tx.hash == tx and not watcher.subscribed.is_set()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await rpc.close()
