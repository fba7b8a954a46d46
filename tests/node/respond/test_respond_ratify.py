"""Optimistic guardian on anvil: a pause opens a ratification task; governance ratifies or it lapses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from respond_support import Harness, Venue, finding

from breakglass.respond import ActionStep

pytestmark = pytest.mark.node

RATIFY = """
- id: pause
  match: {monitors: [oracle-deviation]}
  actions:
    - kind: call
      id: pause-venue
      contract: venue
      function: pause
      once_per: target
      ratify: {within: 3600, ratified: pauseRatified}
"""


async def _paused(venue: Venue, harness: Harness) -> tuple[object, int]:
    responder = await harness.responder()
    [sent] = await responder.handle(finding())
    await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
    [task] = responder.ratifier.open_tasks  # type: ignore[union-attr]
    block = venue.w3.eth.get_block(venue.w3.eth.get_transaction_receipt(sent.tx_hash)["blockNumber"])
    assert task.deadline == block["timestamp"] + 3600
    return responder, task.deadline


async def test_governance_ratifying_the_pause_closes_the_task(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, RATIFY)
    responder, _ = await _paused(venue, harness)
    assert await responder.poll() == []  # nothing yet: not ratified, deadline ahead
    venue.w3.eth.wait_for_transaction_receipt(
        venue.contract.functions.ratifyPause().transact({"from": venue.admin})
    )
    [closed] = await responder.poll()
    assert closed.step is ActionStep.RATIFIED
    assert responder.ratifier.open_tasks == []  # type: ignore[union-attr]


async def test_an_unratified_pause_lapses_at_the_deadline_even_across_a_restart(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, RATIFY)
    first, deadline = await _paused(venue, harness)
    await first.close()
    venue.node.rpc("evm_increaseTime", hex(3601))
    venue.node.mine()
    restarted = await harness.responder()  # the task is rebuilt from the ledger
    [closed] = await restarted.poll()
    assert closed.step is ActionStep.LAPSED and closed.detail["chain_time"] > deadline
    steps = [r.step for r in await restarted.ledger.history(closed.key)]
    assert steps == ["intent", "signed", "submitted", "confirmed", "ratification_opened", "lapsed"]
    assert venue.view("pauseLapsed")
