"""The mempool watcher outlives a node outage: polling fails, is retried, and resumes handing over."""

from __future__ import annotations

import asyncio
from typing import Any

from breakglass.chain.mempool import MempoolWatcher
from breakglass.chain.rpc import RpcClient, TransportError
from breakglass.domain import PendingTx
from breakglass.testing import FakeTransport, wait_until

RAW = {
    "hash": "0x" + "ab" * 32,
    "from": "0x" + "11" * 20,
    "to": "0x" + "22" * 20,
    "value": "0x0",
    "input": "0x",
    "nonce": "0x0",
    "gas": "0x5208",
    "maxFeePerGas": "0x10",
    "maxPriorityFeePerGas": "0x2",
}


async def test_a_node_outage_while_polling_does_not_end_the_watch() -> None:
    up = asyncio.Event()

    def node(method: str, params: list[Any]) -> Any:
        if not up.is_set():
            raise TransportError("connection refused")
        return {"pending": {RAW["from"]: {"0": RAW}}, "queued": {}}

    seen: list[PendingTx] = []

    async def handler(pending: PendingTx) -> None:
        seen.append(pending)

    rpc = RpcClient([FakeTransport(node)], max_rounds=1)
    watcher = MempoolWatcher(rpc, handler, poll_interval=0.01)
    task = asyncio.create_task(watcher.run())
    try:
        await wait_until(lambda: rpc.requests >= 3, within=5, what="failed polls")
        assert not task.done()
        up.set()
        await wait_until(lambda: len(seen) == 1, within=5, what="the pending tx after the outage")
        assert seen[0].tx.max_priority_fee_per_gas == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
