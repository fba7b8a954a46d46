"""A confirmed pause whose block a reorg orphans (``anvil_reorg``) is noticed, audited and put back.

anvil drops the orphaned block's transactions (they do not return to its pool): the pause is gone from
the chain until the responder sends the same signed bytes again. A replay of the raw transaction on the
new branch (``anvil_reorg`` accepts raw bytes) is the case where it is still in, in another block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from respond_support import PAUSE_ONLY, Harness, Venue, finding

from breakglass.bus import Topics
from breakglass.respond import ActionStep, GuardianRelayer, Responder, connect

pytestmark = pytest.mark.node


class CountingRpc:
    """The production client, counting eth_sendRawTransaction calls."""

    def __init__(self, url: str) -> None:
        self._rpc = connect([url])
        self.sends = 0

    async def call(self, method: str, *params: Any) -> Any:
        self.sends += method == "eth_sendRawTransaction"
        return await self._rpc.call(method, *params)

    async def close(self) -> None:
        await self._rpc.close()


def relayer_of(responder: Responder) -> GuardianRelayer:
    assert responder.relayer is not None
    return responder.relayer


async def paused_once(harness: Harness, rpc: Any = None) -> tuple[Responder, Any]:
    responder = await harness.responder(rpc=rpc)
    [sent] = await responder.handle(finding())
    done = await relayer_of(responder).wait(sent.key)
    assert done.step is ActionStep.CONFIRMED and harness.venue.view("paused")
    return responder, done


async def test_a_pause_orphaned_by_a_reorg_is_sent_again_with_the_same_bytes_and_confirmed_again(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    rpc = CountingRpc(venue.node.url)
    responder, first = await paused_once(harness, rpc)
    assert rpc.sends == 1
    venue.node.rpc("anvil_reorg", 1, [])  # the pause's block is replaced by an empty one
    assert not venue.view("paused") and venue.guardian_nonce() == 0

    events = await relayer_of(responder).poll()
    [again] = [e for e in events if e.key == first.key] or [await relayer_of(responder).wait(first.key)]
    assert again.step is ActionStep.CONFIRMED and again.tx_hash == first.tx_hash  # same signed bytes
    assert again.detail["block_hash"] != first.detail["block_hash"]
    assert rpc.sends == 2
    assert venue.view("paused") and venue.guardian_nonce() == 1
    rows = await responder.ledger.history(first.key)
    assert [r.step for r in rows] == ["intent", "signed", "submitted", "confirmed", "reorged", "confirmed"]
    reorged = rows[4]
    assert reorged.detail["block_hash"] == first.detail["block_hash"] and reorged.tx_hash == first.tx_hash
    published = [(await anext(actions)).step for _ in range(4)]
    assert published == [ActionStep.SUBMITTED, ActionStep.CONFIRMED, ActionStep.REORGED, ActionStep.CONFIRMED]


async def test_a_pause_replayed_in_another_block_of_the_new_branch_is_re_tracked_without_a_send(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    rpc = CountingRpc(venue.node.url)
    responder, first = await paused_once(harness, rpc)
    [signed] = [r for r in await responder.ledger.history(first.key) if r.raw_tx]
    venue.node.rpc("anvil_reorg", 1, [[signed.raw_tx, 0]])  # the same raw transaction, in the new block

    [again] = await relayer_of(responder).poll()
    assert again.step is ActionStep.CONFIRMED and again.tx_hash == first.tx_hash
    assert again.detail["block_hash"] != first.detail["block_hash"]
    assert again.detail["block_number"] == first.detail["block_number"]
    assert rpc.sends == 1  # nothing sent: the receipt on the new branch closed it
    assert [r.step for r in await responder.ledger.history(first.key)][-2:] == ["reorged", "confirmed"]
    assert await relayer_of(responder).poll() == []  # and it is watched again, from its new block
    assert len(relayer_of(responder).reorgs) == 1


async def test_a_restarted_responder_still_watches_what_landed_shortly_before(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    first_process, first = await paused_once(harness)
    await first_process.close()
    venue.node.rpc("anvil_reorg", 1, [])
    assert not venue.view("paused")

    restarted = await harness.responder()  # start() -> recover(): the landed pause is watched again
    assert first.key in relayer_of(restarted).reorgs
    again = await relayer_of(restarted).wait(first.key)
    assert again.step is ActionStep.CONFIRMED and again.tx_hash == first.tx_hash
    assert venue.view("paused") and venue.guardian_nonce() == 1
    [repeat] = await restarted.handle(finding())
    assert repeat.step is ActionStep.DUPLICATE


async def test_a_reorg_below_the_pauses_block_is_not_a_reorg_of_the_pause(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, PAUSE_ONLY)
    responder, first = await paused_once(harness)
    venue.node.mine(3)
    venue.node.rpc("anvil_reorg", 2, [])  # orphans the two newest blocks, not the pause's
    assert await relayer_of(responder).poll() == []
    assert [r.step for r in await responder.ledger.history(first.key)][-1] == "confirmed"
    assert relayer_of(responder).reorgs.checks >= 1


async def test_a_reorg_orphaning_several_actions_puts_them_all_back_in_nonce_order(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue)  # block attacker, pause market, pause venue (ratified), notify
    responder = await harness.responder()
    sent = [e for e in await responder.handle(finding()) if e.step is ActionStep.SUBMITTED]
    for event in sent:
        await relayer_of(responder).wait(event.key)
    assert responder.ratifier is not None and len(responder.ratifier.open_tasks) == 1
    venue.node.rpc("anvil_reorg", len(sent), [])  # automine: one block each, all orphaned
    assert venue.guardian_nonce() == 0 and not venue.view("paused")

    closed = await responder.poll()
    closed += [await relayer_of(responder).wait(e.key) for e in sent if e.key not in {c.key for c in closed}]
    assert sorted(c.nonce for c in closed if c.step is ActionStep.CONFIRMED) == [0, 1, 2]  # type: ignore[type-var]
    assert venue.guardian_nonce() == 3 and venue.view("paused") and venue.view("marketPaused", 7)
    reorged = await responder.ledger.rows(steps=(ActionStep.REORGED,))
    assert [r.nonce for r in reorged] == [0, 1, 2]
    assert len(responder.ratifier.open_tasks) == 1  # the re-confirmed pause reopened its task, not a second
