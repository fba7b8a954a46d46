"""Benign traffic: a busy, deterministic day with honest liquidations and no revert a user would see."""

from __future__ import annotations

import pytest

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.venue import Venue
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
    for kind in ("open", "close", "order", "execute", "deposit", "redeem", "swap", "feed", "push"):
        assert report.by_kind[kind] > 0, kind
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
