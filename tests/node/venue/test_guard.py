"""The guardian's powers only make the venue safer; its pauses lapse unless governance ratifies them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from web3.exceptions import ContractLogicError

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.venue import USD, Venue, dev_key
from breakglass.errors import DevnetError

pytestmark = pytest.mark.node

RevertCode = Callable[[Any, str], str]


def open_long(venue: Venue, index: int, market_id: int, margin: int, size: int) -> None:
    trader = dev_key(index)
    venue.fund(trader.address, usd=margin, eth=10**18)
    market = venue.market(market_id)
    venue.send(trader, venue.usd.functions.approve(market.address, margin))
    venue.send(trader, market.functions.openPosition(True, margin, size), gas=1_000_000)


def test_a_venue_pause_stops_new_risk_and_the_vault_but_never_the_way_out(
    venue: Venue, revert_code: RevertCode
) -> None:
    guardian = venue.key("guardian")
    open_long(venue, 24, 0, 10_000 * USD, 400_000 * USD)  # 40x: liquidatable after a 2% fall
    venue.send(guardian, venue.guard.functions.pauseVenue())
    assert venue.guard.functions.isVenuePaused().call()
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "VenueIsPaused")):
        venue.market(0).functions.openPosition(True, 1_000 * USD, 2_000 * USD).call(
            {"from": dev_key(10).address}
        )
    for fn in (venue.vault.functions.deposit(1), venue.vault.functions.redeem(1)):
        with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "VenueIsPaused")):
            fn.call({"from": dev_key(8).address})
    # oracle updates, closes and liquidations go on
    venue.send(venue.key("price_keeper"), venue["feed_eth"].functions.updateAnswer(1_955 * 10**8))
    venue.send(dev_key(10), venue.market(0).functions.closePosition(), gas=1_000_000)
    trader = dev_key(24).address
    assert venue.market(0).functions.isLiquidatable(trader).call()
    venue.send(venue.key("keeper"), venue.market(0).functions.liquidate(trader), gas=1_000_000)
    assert venue.market(0).functions.positions(trader).call()[1] == 0


def test_reduce_only_refuses_new_risk_and_lets_positions_out(venue: Venue, revert_code: RevertCode) -> None:
    guardian, guard = venue.key("guardian"), venue.guard.functions
    open_long(venue, 25, 1, 20_000 * USD, 100_000 * USD)
    trader = dev_key(25)
    venue.send(guardian, guard.reduceOnlyMarket(1))
    assert guard.isReduceOnly(1).call() and not guard.isReduceOnly(0).call()
    btc = venue.market(1).functions
    refused = [(btc.openPosition(True, 1_000 * USD, 2_000 * USD), 0), (btc.withdrawMargin(1_000 * USD), 0),
               (btc.createOrder(True, True, 1_000 * USD, 2_000 * USD, 0), 10**15)]  # fmt: skip
    for fn, value in refused:
        with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "ReduceOnly")):
            fn.call({"from": trader.address, "value": value})
    venue.fund(trader.address, usd=2_000 * USD)
    venue.send(trader, venue.usd.functions.approve(venue.market(1).address, 2_000 * USD))
    venue.send(trader, btc.depositMargin(2_000 * USD))  # a top-up
    venue.send(trader, btc.closePosition(), gas=1_000_000)
    open_long(venue, 26, 0, 10_000 * USD, 20_000 * USD)  # the other markets trade on
    # venue-wide: every market, and LP deposits stop; redemptions go on
    venue.send(guardian, guard.reduceOnlyVenue())
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "ReduceOnly")):
        venue.market(2).functions.openPosition(True, 1_000 * USD, 2_000 * USD).call({"from": trader.address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "DepositsStopped")):
        venue.vault.functions.deposit(1).call({"from": dev_key(8).address})
    whale = venue.key("lp_whale")
    venue.send(whale, venue.vault.functions.redeem(1_000 * USD))


def test_halting_exits_stops_closes_and_liquidations_of_that_market_only(
    venue: Venue, revert_code: RevertCode
) -> None:
    venue.send(venue.key("guardian"), venue.guard.functions.haltExits(0))
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "ExitsAreHalted")):
        venue.market(0).functions.closePosition().call({"from": dev_key(10).address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "ExitsAreHalted")):
        venue.market(0).functions.liquidate(dev_key(10).address).call({"from": venue.key("keeper").address})
    venue.send(dev_key(10), venue.market(1).functions.closePosition(), gas=1_000_000)


def test_the_guardian_withdrawal_limit_only_lowers_and_lapses(
    venue: Venue, chain: Anvil, revert_code: RevertCode
) -> None:
    guardian, guard = venue.key("guardian"), venue.guard.functions
    whale = venue.key("lp_whale")
    assert guard.withdrawalLimit().call() == 2**256 - 1
    venue.send(guardian, guard.setWithdrawalLimit(500_000 * USD))
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "OnlyTightening")):
        guard.setWithdrawalLimit(600_000 * USD).call({"from": guardian.address})
    shares = venue.vault.functions.balanceOf(whale.address).call() * 3 // 100  # ~300k of 10M
    venue.send(whale, venue.vault.functions.redeem(shares))
    assert venue.vault.functions.withdrawalAvailable().call() < 201_000 * USD
    with pytest.raises(ContractLogicError, match=revert_code(venue.vault, "WithdrawalLimitExceeded")):
        venue.vault.functions.redeem(shares).call({"from": whale.address})
    chain.rpc("evm_increaseTime", guard.pauseWindow().call() + 1)
    chain.mine()
    assert guard.withdrawalLimit().call() == 2**256 - 1
    venue.send(whale, venue.vault.functions.redeem(shares))


def test_guardian_cannot_unpause_or_loosen(venue: Venue, revert_code: RevertCode) -> None:
    guardian = venue.key("guardian")
    guard = venue.guard.functions
    venue.send(guardian, guard.pauseVenue())
    venue.send(guardian, guard.pauseMarket(2))
    for fn in (guard.unpauseVenue(), guard.unpauseMarket(2), guard.unblockAccount(guardian.address),
               guard.setPauseWindow(10**9), guard.ratifyVenuePause(), guard.resumeVenue(),
               guard.resumeMarket(2), guard.resumeExits(2), guard.resumeWithdrawals(),
               guard.setWithdrawalWindow(1)):  # fmt: skip
        with pytest.raises(
            ContractLogicError, match=revert_code(venue.guard, "AccessControlUnauthorizedAccount")
        ):
            fn.call({"from": guardian.address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "OnlyTightening")):
        guard.setMaxLeverage(0, 51).call({"from": guardian.address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "OnlyTightening")):
        guard.setOpenInterestCap(0, 21_000_000 * USD).call({"from": guardian.address})
    with pytest.raises(
        ContractLogicError, match=revert_code(venue.guard, "AccessControlUnauthorizedAccount")
    ):
        guard.grantRole(guard.GOVERNOR_ROLE().call(), guardian.address).call({"from": guardian.address})


def test_guardian_can_tighten_limits_and_the_market_enforces_them(
    venue: Venue, revert_code: RevertCode
) -> None:
    guardian = venue.key("guardian")
    venue.send(guardian, venue.guard.functions.setMaxLeverage(0, 5))
    assert venue.guard.functions.maxLeverage(0).call() == 5
    with pytest.raises(DevnetError):
        open_long(venue, 20, 0, 10_000 * USD, 100_000 * USD)
    venue.send(guardian, venue.guard.functions.setOpenInterestCap(0, 1_000_000 * USD))
    with pytest.raises(ContractLogicError, match=revert_code(venue.market(0), "OpenInterestCapExceeded")):
        venue.market(0).functions.openPosition(True, 10_000 * USD, 20_000 * USD).call(
            {"from": dev_key(20).address}
        )


def test_blocked_account_is_refused_directly_and_through_its_contracts(
    venue: Venue, revert_code: RevertCode
) -> None:
    trader = dev_key(21)
    venue.send(venue.key("guardian"), venue.guard.functions.blockAccount(trader.address))
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "AccountIsBlocked")):
        venue.guard.functions.checkMarket(venue.vault.address, 0).call({"from": trader.address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "AccountIsBlocked")):
        venue.vault.functions.deposit(1).call({"from": trader.address})


def test_guardian_pause_lapses_after_the_window(venue: Venue, chain: Anvil) -> None:
    guard = venue.guard.functions
    venue.send(venue.key("guardian"), guard.pauseMarket(1))
    assert guard.isMarketPaused(1).call()
    assert not guard.isMarketPaused(0).call()
    window = guard.pauseWindow().call()
    chain.rpc("evm_increaseTime", window + 1)
    chain.mine()
    assert not guard.isMarketPaused(1).call()
    # a repeated guardian pause while one is in force never extends it
    venue.send(venue.key("guardian"), guard.pauseVenue())
    until = guard.venuePause().call()[0]
    venue.send(venue.key("guardian"), guard.pauseVenue())
    assert guard.venuePause().call()[0] == until
