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


def test_guardian_pause_blocks_every_user_entry_point(venue: Venue, revert_code: RevertCode) -> None:
    guardian = venue.key("guardian")
    venue.send(guardian, venue.guard.functions.pauseVenue())
    assert venue.guard.functions.isVenuePaused().call()
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "VenueIsPaused")):
        venue.market(0).functions.closePosition().call({"from": dev_key(10).address})
    with pytest.raises(ContractLogicError, match=revert_code(venue.guard, "VenueIsPaused")):
        venue.vault.functions.deposit(1).call({"from": dev_key(8).address})


def test_guardian_cannot_unpause_or_loosen(venue: Venue, revert_code: RevertCode) -> None:
    guardian = venue.key("guardian")
    guard = venue.guard.functions
    venue.send(guardian, guard.pauseVenue())
    venue.send(guardian, guard.pauseMarket(2))
    for fn in (guard.unpauseVenue(), guard.unpauseMarket(2), guard.unblockAccount(guardian.address),
               guard.setPauseWindow(10**9), guard.ratifyVenuePause()):  # fmt: skip
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
