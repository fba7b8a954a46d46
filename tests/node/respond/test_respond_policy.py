"""Policy on a real chain: refusals are audited and nothing is sent; the guardian's powers stay one-way."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from respond_support import Harness, Venue, finding

from breakglass.bus import Topics
from breakglass.errors import ConfigError
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
    with pytest.raises(ConfigError) as refused:  # what `breakglass check` and start-up say
        await harness.responder(start=False)
    assert [i.path for i in refused.value.issues] == [
        "playbooks[0].actions[0].function",
        "playbooks[0].actions[3].function",
    ]
    responder = await harness.responder(vet=False)  # built anyway: the refusals at run time
    events = await responder.handle(finding())
    assert [e.step for e in events] == [ActionStep.REFUSED] * 4
    unpause, raise_cap, relax, unlisted = events
    # unpause is refused by name whatever the allowlist says: loosening is never automatic.
    assert unpause.detail["rule"] == "loosening" and "unpause" in unpause.detail["reason"]
    assert unlisted.detail["rule"] == "allowlist"
    # setMaxLeverage(100) and lowerMaxLeverage(60) against the current 50 read on chain: both loosen,
    # both refused before anything is simulated or signed (the contract would refuse them too).
    for event, called in ((raise_cap, "setMaxLeverage(100)"), (relax, "lowerMaxLeverage(60)")):
        assert event.detail["rule"] == "bound", event.detail
        assert called in event.detail["reason"] and "above its current value 50" in event.detail["reason"]
        assert event.tx_hash is None
    assert venue.view("maxLeverage") == 50 and not venue.view("paused") and venue.guardian_nonce() == 0
    audit = await responder.ledger.rows(steps=(ActionStep.REFUSED,))
    assert [(r.action, r.detail["rule"]) for r in audit] == [
        ("unpause", "loosening"),
        ("raise-cap", "bound"),
        ("relax-leverage", "bound"),
        ("not-listed", "allowlist"),
    ]
    published = [(await anext(actions)).step for _ in range(4)]
    assert published == [ActionStep.REFUSED] * 4


TIGHTER = """
- id: tighten
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: lower, contract: venue, function: lowerMaxLeverage, args: ["{evidence.leverage}"]}
"""


async def test_a_bounded_parameter_is_only_ever_tightened_against_its_value_on_chain(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    responder = await harness_factory(venue, TIGHTER).responder()
    [looser] = await responder.handle(finding(tx="0x" + "01" * 32, leverage=51))
    assert looser.step is ActionStep.REFUSED and looser.detail["rule"] == "bound"
    [tighter] = await responder.handle(finding(tx="0x" + "02" * 32, leverage=20))
    assert tighter.step is ActionStep.SUBMITTED, tighter.detail
    await responder.relayer.wait(tighter.key)  # type: ignore[union-attr]
    assert venue.view("maxLeverage") == 20
    # the bound moved with the chain: 30 was tighter than 50, and is looser than 20 now
    [now_looser] = await responder.handle(finding(tx="0x" + "03" * 32, leverage=30))
    assert now_looser.detail["rule"] == "bound" and "current value 20" in now_looser.detail["reason"]
    assert venue.view("maxLeverage") == 20 and venue.guardian_nonce() == 1


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
