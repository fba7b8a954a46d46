"""Liquidity isolation: a market pays profits only from its own compartment."""

from __future__ import annotations

import pytest

from breakglass.devnet.venue import USD, Venue, dev_key

pytestmark = pytest.mark.node


def test_a_winning_trader_is_paid_from_its_market_compartment_only(venue: Venue) -> None:
    thin = venue.market(2)
    trader = dev_key(22)
    venue.fund(trader.address, usd=50_000 * USD + 3_000_000 * USD, eth=10**18)
    venue.send(trader, venue.usd.functions.approve(thin.address, 50_000 * USD))
    venue.send(trader, thin.functions.openPosition(True, 50_000 * USD, 90_000 * USD))
    before = venue.balances()
    # a huge honest buy moves the pool; the market's average follows once the window has passed
    amm = venue["amm_thin"]
    venue.send(trader, venue.usd.functions.approve(amm.address, 3_000_000 * USD))
    venue.send(trader, amm.functions.swap(True, 3_000_000 * USD, 0, trader.address))
    venue.w3.provider.make_request("evm_increaseTime", [3600])  # type: ignore[arg-type]
    venue.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert venue.market(2).functions.positionPnl(trader.address).call() > before.compartments[2]
    venue.send(trader, thin.functions.closePosition())
    after = venue.balances()
    assert after.compartments[2] == 0  # the thin compartment is emptied...
    assert after.compartments[:2] == before.compartments[:2]  # ...the others are untouched
    assert after.idle == before.idle


def test_pausing_one_market_leaves_the_others_trading(venue: Venue) -> None:
    venue.send(venue.key("guardian"), venue.guard.functions.pauseMarket(2))
    trader = dev_key(23)
    venue.fund(trader.address, usd=20_000 * USD, eth=10**18)
    for market_id in (0, 1):
        market = venue.market(market_id)
        venue.send(trader, venue.usd.functions.approve(market.address, 10_000 * USD))
        venue.send(trader, market.functions.openPosition(True, 10_000 * USD, 50_000 * USD))
    thin = venue.market(2)
    receipt = venue.send(trader, thin.functions.openPosition(True, 1, 1), check=False, gas=300_000)
    assert receipt["status"] == 0
    assert venue.market(0).functions.positions(trader.address).call()[1] == 50_000 * USD
