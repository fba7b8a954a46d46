"""The follower on a real anvil: order, exactly-once checkpoints, reorgs, node outages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from breakglass.chain.checkpoint import CheckpointFenced, CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.devnet.anvil import Anvil
from breakglass.testing import RecordingHandler as Recorder
from breakglass.testing import wait_until

pytestmark = pytest.mark.node


def transfer(node: Anvil, value: int = 1) -> str:
    accounts = node.rpc("eth_accounts")
    return str(node.rpc("eth_sendTransaction", {"from": accounts[0], "to": accounts[1], "value": hex(value)}))


async def test_every_block_reaches_the_handler_once_in_order_with_receipts(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    tx_hash = transfer(anvil)
    anvil.mine(30)
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0, batch_blocks=7)
    assert await follower.step() == 32
    assert recorder.numbers == list(range(32))
    assert recorder.blocks[1].transactions[0].hash == tx_hash
    assert recorder.blocks[1].transactions[0].receipt is not None
    # restarting with a new follower on the same store resumes at last + 1
    anvil.mine(3)
    again = Recorder()
    second = Follower(rpc, checkpoints, again, chain_id=31337, start_block=0)
    assert await second.step() == 3
    assert again.numbers == [32, 33, 34]
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(35))
    await rpc.close()


async def test_confirmation_depth_holds_back_the_newest_blocks(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(10)
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0, confirmations=3)
    await follower.step()
    assert recorder.numbers == list(range(8))
    await rpc.close()


async def test_a_reorg_orphans_the_old_branch_and_processes_the_new_one(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(10)
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0)
    await follower.step()
    old = {b.number: b.hash for b in recorder.blocks}
    accounts = anvil.rpc("eth_accounts")
    replacement = {"from": accounts[2], "to": accounts[3], "value": "0x7"}
    anvil.rpc("anvil_reorg", 3, [[replacement, 1]])  # replace blocks 8..10 with a new branch
    anvil.mine(2)
    await follower.step()
    await follower.step()
    assert follower.reorgs == 1
    assert sorted(c.number for c in recorder.orphaned) == [8, 9, 10]
    assert all(old[c.number] == c.hash for c in recorder.orphaned)
    canonical = await checkpoints.processed(31337)
    assert [n for n, _h, _o in canonical] == list(range(13))
    for number, block_hash, _ in canonical:
        assert anvil.rpc("eth_getBlockByNumber", hex(number), False)["hash"] == block_hash
    marked = [row for row in await checkpoints.processed(31337, include_orphaned=True) if row[2]]
    assert sorted(n for n, _h, _o in marked) == [8, 9, 10]  # kept, marked: never deleted
    await rpc.close()


async def test_a_same_height_reorg_at_the_head_is_noticed_without_a_new_block(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(5)
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0)
    await follower.step()
    anvil.rpc("anvil_reorg", 2, [])
    await follower.step()
    await follower.step()
    assert sorted(c.number for c in recorder.orphaned) == [4, 5]
    assert [b.number for b in recorder.blocks][-2:] == [4, 5]
    await rpc.close()


@pytest.mark.slow
async def test_a_node_outage_mid_stream_loses_and_repeats_no_block(
    anvil_factory: Callable[..., Anvil], checkpoints: CheckpointStore, tmp_path: Path
) -> None:
    state = str(tmp_path / "anvil-state.json")
    node = anvil_factory(extra_args=("--state", state))
    port = node.port
    recorder = Recorder()
    rpc = RpcClient.from_urls([node.url], timeout=2.0, max_rounds=2, backoff=0.05)
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    node.mine(20)
    await wait_until(lambda: recorder.numbers[-1:] == [20])
    node.stop()  # the node goes away mid-stream (its chain is kept in the state file)
    await wait_until(lambda: follower.errors > 0, what="the follower noticing the outage")
    restarted = anvil_factory(port=port, extra_args=("--state", state))
    restarted.mine(15)
    await wait_until(lambda: recorder.numbers[-1:] == [35])
    stop.set()
    await task
    assert recorder.numbers == list(range(36))
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(36))
    await rpc.close()


async def test_new_heads_by_subscription_wake_the_follower_long_before_its_poll(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    start = int(anvil.rpc("eth_blockNumber"), 16) + 1
    follower = Follower(
        rpc, checkpoints, recorder, chain_id=31337, start_block=start, poll_interval=60.0, ws_url=anvil.ws_url
    )
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    await wait_until(lambda: follower.subscribed, what="the newHeads subscription")
    for _ in range(3):
        anvil.mine(1)
        target = int(anvil.rpc("eth_blockNumber"), 16)
        await wait_until(lambda t=target: recorder.numbers[-1:] == [t], within=10.0, what="a woken follower")
    stop.set()
    await task
    assert follower.last_head_seen is not None
    await rpc.close()


async def test_a_backfill_checkpoints_every_interval_not_every_window(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(60)
    writes: list[list[int]] = []
    original = checkpoints.advance_many

    async def counted(chain_id: int, rows: list[tuple[int, str, str, int]], **options: Any) -> None:
        writes.append([n for n, _h, _p, _f in rows])
        await original(chain_id, rows, **options)

    checkpoints.advance_many = counted  # type: ignore[method-assign]
    rpc = RpcClient.from_urls([anvil.url])
    slow = Follower(
        rpc, checkpoints, Recorder(), chain_id=31337, start_block=0, batch_blocks=7, checkpoint_interval=3600
    )
    assert await slow.step() == 61
    assert writes == [list(range(61))]  # one write, at the end of the step: every block in it
    anvil.mine(30)
    writes.clear()
    eager = Follower(
        rpc, checkpoints, Recorder(), chain_id=31337, start_block=0, batch_blocks=7, checkpoint_interval=0
    )
    assert await eager.step() == 30
    assert [len(w) for w in writes] == [7, 7, 7, 7, 2]  # interval 0: every window, as before
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(91))
    await rpc.close()


async def test_a_block_is_checkpointed_only_once_its_findings_are_in_every_consumers_hands(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    """The handler's ``settled()`` (the bus's hand-off, issue 20 item 4) gates the checkpoint."""
    anvil.mine(5)
    handed = asyncio.Event()

    class Handler(Recorder):
        def settled(self) -> asyncio.Future[None]:
            return asyncio.ensure_future(handed.wait())  # type: ignore[return-value]

    recorder = Handler()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0)
    step = asyncio.create_task(follower.step())
    await wait_until(lambda: len(recorder.numbers) == 6, what="six blocks handled")
    await asyncio.sleep(0.3)  # time for a checkpoint write that does not wait (none may happen)
    assert await checkpoints.processed(31337) == []
    assert not step.done()
    handed.set()
    assert await step == 6
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(6))
    await rpc.close()


async def test_following_a_new_head_is_handled_while_the_last_checkpoint_write_still_runs(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    """``run`` (write_behind): a slow checkpoint write holds no head back; the rows handled meanwhile
    are written after it, in order, and every block ends up checkpointed once."""
    anvil.mine(2)
    release = asyncio.Event()
    writes: list[list[int]] = []
    original = checkpoints.advance_many

    async def slow(chain_id: int, rows: list[tuple[int, str, str, int]], **options: Any) -> None:
        writes.append([n for n, _h, _p, _f in rows])
        await release.wait()
        await original(chain_id, rows, **options)

    checkpoints.advance_many = slow  # type: ignore[method-assign]
    recorder = Recorder()
    rpc = RpcClient.from_urls([anvil.url])
    follower = Follower(rpc, checkpoints, recorder, chain_id=31337, start_block=0, poll_interval=0.02)
    stop = asyncio.Event()
    running = asyncio.create_task(follower.run(stop))
    await wait_until(lambda: writes == [[0, 1, 2]], what="the first write, held")
    anvil.mine(2)
    await wait_until(lambda: recorder.numbers[-1:] == [4], what="the new heads, handled during the write")
    assert writes == [[0, 1, 2]] and {n for n, _h, _p, _f in follower.backlog} >= {3, 4}
    release.set()
    await wait_until(lambda: not follower.backlog, what="the rows handled meanwhile, written after it")
    assert writes[0] == [0, 1, 2] and sorted(n for w in writes[1:] for n in w) == [3, 4]
    stop.set()
    await running
    assert [n for n, _h, _o in await checkpoints.processed(31337)] == list(range(5))
    assert recorder.numbers == list(range(5))
    await rpc.close()


async def test_a_follower_whose_fencing_token_was_superseded_stops_without_moving_the_cursor(
    anvil: Anvil, checkpoints: CheckpointStore
) -> None:
    anvil.mine(5)
    rpc = RpcClient.from_urls([anvil.url])
    old = Follower(rpc, checkpoints, Recorder(), chain_id=31337, start_block=0)
    old.fence = 1
    await checkpoints.claim(31337, 1)
    await old.step()
    reached = await checkpoints.last(31337)
    await checkpoints.claim(31337, 2)  # another replica took the detect lease
    anvil.mine(3)
    with pytest.raises(CheckpointFenced):
        await old.step()
    assert await checkpoints.last(31337) == reached
    new = Recorder()
    standby = Follower(rpc, checkpoints, new, chain_id=31337, start_block=0)
    standby.fence = 2
    await standby.step()
    assert reached is not None and new.numbers[0] == reached.number + 1
    await rpc.close()
