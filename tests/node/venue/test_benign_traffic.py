"""Benign traffic: a busy, deterministic day with honest liquidations and no revert a user would see."""

from __future__ import annotations

import pytest

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.venue import Venue
from breakglass.devnet.venue.tx import build_tx, call_data, sign_tx
from breakglass.drills.benign import BenignConfig, BenignTraffic

pytestmark = pytest.mark.node


@pytest.mark.slow
def test_a_busy_day_of_benign_traffic_has_no_unexpected_revert(venue: Venue, chain: Anvil) -> None:
    # 36 s blocks so that a proposal clears the 1 h timelock delay within the run
    traffic = BenignTraffic(venue, BenignConfig(seed=3, block_seconds=36, governance_every=80))
    traffic.fund()
    seen: list[int] = []
    report = traffic.run(200, on_block=seen.append)
    assert report.reverts == []
    assert report.blocks == 200 and seen == list(range(report.first_block, report.last_block + 1))
    assert report.transactions / report.blocks >= 4  # busy, not a trickle
    assert report.liquidations >= 1  # the volatile day broke some positions, honestly
    assert report.governance_executed >= 1  # Safe -> timelock -> execution after the delay
    kinds = ("open", "close", "order", "execute", "deposit", "redeem", "swap", "feed", "push", "contract")
    for kind in kinds:
        assert report.by_kind[kind] > 0, kind
    assert report.by_kind["deploy"] == 4  # honest users' own contracts (a zap, a flash-loan user) in use
    eth_low, eth_high = report.price_range["feed_eth"]
    assert eth_high / eth_low > 1.1


def test_the_same_seed_generates_the_same_traffic(venue: Venue, chain: Anvil) -> None:
    snapshot = chain.snapshot()
    reports = []
    for _ in range(2):
        traffic = BenignTraffic(venue, BenignConfig(seed=5))
        traffic.fund()
        reports.append(traffic.run(25))
        chain.revert(snapshot)
        snapshot = chain.snapshot()
    assert reports[0].by_kind == reports[1].by_kind
    assert reports[0].price_range == reports[1].price_range
    assert reports[0].transactions > 50


@pytest.mark.slow
def test_traffic_goes_on_with_the_ids_the_chain_gave_when_a_pause_reverts_orders_under_it(
    venue: Venue, chain: Anvil
) -> None:
    # A defense that pauses a market on honest traffic makes the orders sent meanwhile revert; the
    # generator once predicted order ids by counting its own sends, so the next order after the pause
    # was looked up at an id the market never gave and the run crashed (issue 20). Here market 0 is
    # paused for 15 blocks, then governance unpauses it and trading resumes.
    traffic = BenignTraffic(venue, BenignConfig(seed=11))
    traffic.fund()
    guard, timelock = venue.guard, venue["timelock"].address
    guardian = venue.key("guardian")
    chain.rpc("anvil_setBalance", timelock, hex(10**18))
    chain.rpc("anvil_impersonateAccount", timelock)
    first = traffic.w3.eth.block_number + 1

    def pause_then_unpause(number: int) -> None:
        if number == first + 5:  # sent now, mined with the next block
            tx = build_tx(traffic.w3, guardian.address, to=guard.address, gas=200_000,
                          data=call_data(guard.functions.pauseMarket(0)))  # fmt: skip
            traffic.w3.eth.send_raw_transaction(sign_tx(guardian, tx))
        elif number == first + 20:
            data = call_data(guard.functions.unpauseMarket(0))
            chain.rpc("eth_sendTransaction", {"from": timelock, "to": guard.address, "data": data})

    report = traffic.run(50, on_block=pause_then_unpause)
    assert not guard.functions.isMarketPaused(0).call()
    paused = range(first + 6, first + 22)  # the unpause shares block first + 21 with trades
    order_reverts = [r for r in report.reverts if r["kind"] == "order"]
    assert order_reverts and all(r["block"] in paused for r in order_reverts)  # the pause did bite
    assert all(r["block"] in paused for r in report.reverts), (first, report.reverts)  # nothing else
    # every order was executed (or cancelled) by its keeper under the id the market gave it, the ones
    # caught by the pause once it was lifted; only those of the last block may still wait
    events = venue.market(0).events
    span = {"from_block": first, "to_block": report.last_block}
    created = {e["args"]["orderId"]: e["blockNumber"] for e in events.OrderCreated().get_logs(**span)}
    done = {e["args"]["orderId"] for e in events.OrderExecuted().get_logs(**span)}
    done |= {e["args"]["orderId"] for e in events.OrderCancelled().get_logs(**span)}
    assert any(block > first + 21 for block in created.values())  # orders after the pause, too
    assert {i for i, block in created.items() if block < report.last_block} <= done


def test_a_run_picks_up_nonces_others_used_since_the_last_one(venue: Venue, chain: Anvil) -> None:
    # A drill plays benign blocks between the scenario's steps, and a scenario may send with a
    # participant's key (reentrant-aum's rally updates the feed as the price keeper): the next run sent
    # the price keeper's feed update with the nonce it remembered ("nonce too low", the drill crashed).
    from breakglass.devnet.venue import role_key

    traffic = BenignTraffic(venue, BenignConfig(seed=5))
    traffic.fund()
    traffic.run(6)
    keeper, feed = role_key("price_keeper"), venue["feed_eth"]
    tx = build_tx(traffic.w3, keeper.address, to=feed.address, gas=200_000,
                  data=call_data(feed.functions.updateAnswer(2_000 * 10**8)))  # fmt: skip
    traffic.w3.eth.send_raw_transaction(sign_tx(keeper, tx))
    assert traffic.run(6).reverts == []
