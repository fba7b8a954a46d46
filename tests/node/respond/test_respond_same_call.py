"""One on-chain call, however many steps ask for it: two playbooks (or two breaches) asking for the
identical guardian call within ``SAME_CALL_BLOCKS`` blocks send it once; the later steps are recorded
as satisfied by the first, also after a restart. (``make demo`` sent ``pauseMarket(0)`` twice in one
block, from contain-market and contain-price-push.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import pytest
from respond_support import Harness, Venue, finding

from breakglass.bus import Topics
from breakglass.respond import ActionStep
from breakglass.respond.responder import SAME_CALL_BLOCKS

pytestmark = pytest.mark.node

TWO_PLAYBOOKS = """
- id: contain-market
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
- id: contain-price-push
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
    - {kind: call, id: block-pusher, contract: venue, function: blockAccount, args: ["{evidence.attacker}"]}
"""


async def test_two_playbooks_asking_for_the_same_call_send_it_once(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, TWO_PLAYBOOKS)
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    responder = await harness.responder()
    sent, satisfied, blocked = await responder.handle(finding())
    assert [sent.step, satisfied.step, blocked.step] == [
        ActionStep.SUBMITTED,
        ActionStep.SATISFIED,
        ActionStep.SUBMITTED,  # another call: sent
    ]
    assert satisfied.playbook == "contain-price-push" and satisfied.key != sent.key
    assert satisfied.detail["by"] == sent.key and satisfied.detail["tx_hash"] == sent.tx_hash
    assert "contain-market.pause-market" in satisfied.detail["reason"]
    assert satisfied.tx_hash is None  # no transaction of its own
    await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
    await responder.relayer.wait(blocked.key)  # type: ignore[union-attr]
    assert venue.view("marketPaused", 7) and venue.guardian_nonce() == 2
    assert [row.step for row in await responder.ledger.history(satisfied.key)] == ["intent", "satisfied"]
    published = [await anext(actions) for _ in range(3)]
    assert [e.step for e in published] == [ActionStep.SUBMITTED, ActionStep.SATISFIED, ActionStep.SUBMITTED]
    # the same finding again: every key is taken, nothing is sent
    again = await responder.handle(finding())
    assert [e.step for e in again] == [ActionStep.DUPLICATE] * 3
    assert venue.guardian_nonce() == 2


async def test_the_window_survives_a_restart_and_ends_after_same_call_blocks(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, TWO_PLAYBOOKS)
    first = await harness.responder()
    sent, _, blocked = await first.handle(finding())
    await first.relayer.wait(sent.key)  # type: ignore[union-attr]
    await first.relayer.wait(blocked.key)  # type: ignore[union-attr]
    await first.close()
    second = await harness.responder()  # a new process: the send is read back from the ledger
    other = replace(finding(tx="0x" + "cd" * 32), block_number=1 + SAME_CALL_BLOCKS)  # another breach
    steps = await second.handle(other)
    assert [e.step for e in steps] == [ActionStep.SATISFIED, ActionStep.SATISFIED, ActionStep.SATISFIED]
    assert steps[0].detail["by"] == sent.key and steps[2].detail["by"] == blocked.key
    later = replace(finding(tx="0x" + "ef" * 32), block_number=2 + SAME_CALL_BLOCKS)  # past the window
    resent = await second.handle(later)
    assert [e.step for e in resent] == [ActionStep.SUBMITTED, ActionStep.SATISFIED, ActionStep.SUBMITTED]
    assert resent[1].detail["by"] == resent[0].key  # the window restarts at the new send
    other_market = await second.handle(
        replace(finding(market="8", tx="0x" + "cd" * 32), block_number=2 + SAME_CALL_BLOCKS)
    )
    assert [e.step for e in other_market] == [
        ActionStep.SUBMITTED,
        ActionStep.SATISFIED,
        ActionStep.SATISFIED,
    ]
    for event in (*resent, *other_market):
        if event.step is ActionStep.SUBMITTED:
            await second.relayer.wait(event.key)  # type: ignore[union-attr]
    assert venue.view("marketPaused", 8)
    assert venue.guardian_nonce() == 2 + 2 + 1


async def test_two_findings_at_once_asking_for_the_same_calls_send_each_once(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, TWO_PLAYBOOKS)
    responder = await harness.responder(start=False)
    first, second = await asyncio.gather(
        responder.handle(finding()), responder.handle(finding(tx="0x" + "cd" * 32))
    )
    steps = [e.step for e in [*first, *second]]
    assert steps.count(ActionStep.SUBMITTED) == 2 and steps.count(ActionStep.SATISFIED) == 4, steps
    for event in [*first, *second]:
        if event.step is ActionStep.SUBMITTED:
            await responder.relayer.wait(event.key)  # type: ignore[union-attr]
    assert venue.guardian_nonce() == 2
