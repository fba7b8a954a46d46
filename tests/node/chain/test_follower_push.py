"""The follower uses what its subscription pushes: a new head costs one round trip, and while the
subscription is live nothing is polled but its watchdog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil
from breakglass.testing import RecordingHandler, wait_until

pytestmark = pytest.mark.node


class WithState(RecordingHandler):
    """A handler with state reads to go out with the head's block (as the engine's reader call)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, Any] = {}

    def state_requests(self, number: int, block_hash: str) -> list[tuple[str, Sequence[Any]]]:
        return [("eth_getBalance", ("0x" + "00" * 20, {"blockHash": block_hash}))]

    def accept_state(self, block_hash: str, answers: Sequence[Any]) -> None:
        self.answers[block_hash] = answers[0]


async def test_a_pushed_head_is_handled_in_one_round_trip_with_its_state_and_no_poll(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    handler = WithState()
    rpc = RpcClient.from_urls([anvil.url])
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    follower = Follower(
        rpc, checkpoints, handler, chain_id=31337, start_block=start, poll_interval=0.05, ws_url=anvil.ws_url
    )
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    try:
        await wait_until(lambda: follower.subscribed, what="the newHeads subscription")
        await wait_until(lambda: follower.polls >= 1, what="the first step")  # at start: one poll
        polls, sent = follower.polls, rpc.requests
        for _ in range(5):
            anvil.mine(1)
            target = int(anvil.rpc("eth_blockNumber"), 16)
            await wait_until(lambda t=target: handler.numbers[-1:] == [t], within=10.0, what="the head")
        assert rpc.requests - sent == 5  # block, receipts and state of each head: one batch each
        assert follower.polls == polls  # every head came pushed
        assert all(h in handler.answers for h in (b.hash for b in handler.blocks[-5:]))
        idle = rpc.requests
        await asyncio.sleep(1.0)  # 20 poll intervals of silence
        assert rpc.requests == idle  # nothing polled while the subscription is live
    finally:
        stop.set()
        await task
        await rpc.close()


async def test_a_live_but_silent_subscription_is_watched_by_polling(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(
        rpc,
        checkpoints,
        RecordingHandler(),
        chain_id=31337,
        poll_interval=0.05,
        watchdog_interval=0.2,
        ws_url=anvil.ws_url,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    try:
        await wait_until(lambda: follower.subscribed, what="the newHeads subscription")
        polls = follower.polls
        await asyncio.sleep(1.0)
        assert 2 <= follower.polls - polls <= 6  # every 0.2 s, not every 0.05 s
    finally:
        stop.set()
        await task
        await rpc.close()
