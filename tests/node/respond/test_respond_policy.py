"""Policy on a real chain: refusals are audited and nothing is sent; the guardian's powers stay one-way."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from respond_support import Harness, Venue, finding

from breakglass.bus import Topics
from breakglass.respond import ActionStep

pytestmark = pytest.mark.node

LOOSENING = """
- id: misguided
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: unpause, contract: venue, function: unpause}
    - {kind: call, id: raise-cap, contract: venue, function: setMaxLeverage, args: [100]}
    - {kind: call, id: relax-leverage, contract: venue, function: lowerMaxLeverage, args: [60]}
    - {kind: call, id: not-listed, contract: venue, function: ratifyPause}
"""


async def test_loosening_and_unlisted_calls_are_refused_audited_and_never_sent(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue, LOOSENING)
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    responder = await harness.responder()
    events = await responder.handle(finding())
    assert [e.step for e in events] == [
        ActionStep.REFUSED,
        ActionStep.FAILED,
        ActionStep.FAILED,
        ActionStep.REFUSED,
    ]
    unpause, raise_cap, relax, unlisted = events
    # unpause is allowlisted and still refused: loosening is never automatic, whatever the allowlist says.
    assert unpause.detail["rule"] == "loosening" and "unpause" in unpause.detail["reason"]
    assert unlisted.detail["rule"] == "allowlist"
    # lowerMaxLeverage(60) above the current 50 reverts in simulation (the contract allows lowering only):
    # recorded as failed, nothing signed.
    assert "simulation" in str(relax.detail["error"]) and relax.tx_hash is None
    # setMaxLeverage is (wrongly) classified as tightening in this config, but it is admin-only on chain:
    # the simulation reverts, nothing is sent, the cap stays where it was.
    assert "NotAdmin" in str(raise_cap.detail["error"]) or "revert" in str(raise_cap.detail["error"])
    assert venue.view("maxLeverage") == 50 and not venue.view("paused") and venue.guardian_nonce() == 0
    audit = await responder.ledger.rows(steps=(ActionStep.REFUSED,))
    assert [(r.action, r.detail["rule"]) for r in audit] == [
        ("unpause", "loosening"),
        ("not-listed", "allowlist"),
    ]
    published = [(await anext(actions)).step for _ in range(4)]
    assert published.count(ActionStep.REFUSED) == 2


ONE_PER_HOUR = """
- id: contain
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
"""


async def test_a_rate_limit_still_holds_after_a_restart(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(
        venue, ONE_PER_HOUR, policy="rate_limits: {contain.pause-market: {count: 1, per_seconds: 3600}}\n"
    )
    first = await harness.responder()
    [sent] = await first.handle(finding(market="1"))
    assert sent.step is ActionStep.SUBMITTED
    await first.close()
    restarted = await harness.responder()
    [refused] = await restarted.handle(finding(market="2", tx="0x" + "cd" * 32))
    assert refused.step is ActionStep.REFUSED and refused.detail["rule"] == "rate"
    assert not venue.view("marketPaused", 2)
