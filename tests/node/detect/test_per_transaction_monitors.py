"""examples/venue.yaml's monitors for the slow attacks, on the block path against the real reference
venue: ``vault-round-trip`` (a transaction monitor reading ``logs``) flags every Harvest-style loop of
repeated-drain and nothing else; ``thin-open-interest`` breaks at the first position the safe venue
would refuse in slow-squeeze. (The pending path: tests/node/mempool/test_front_running.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_venue_example import watch_venue  # type: ignore[import-not-found]
from web3 import Web3

from breakglass.detect.service import Watcher
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, VenueOptions, deploy_venue
from breakglass.domain import Severity
from breakglass.drills.scenarios import SCENARIOS, Phase, Scenario, ScenarioResult, ScenarioRun

pytestmark = [pytest.mark.node, pytest.mark.slow]


async def play_followed(scenario: Scenario, venue: Venue, build: Build, watcher: Watcher) -> ScenarioResult:
    """The scenario on automine with the follower stepped after each transaction, as a live watcher
    would be (a catch-up afterwards would find the early blocks past the state horizon)."""
    run = ScenarioRun(scenario, venue, build)
    run.fund_dirty_wallet()
    for phase, step in run.steps():
        run.execute(phase, step)
        await watcher.follower.step()
    return run.finish()


async def test_every_repeated_drain_loop_is_a_critical_round_trip_finding(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    scenario = SCENARIOS["repeated-drain"]
    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
    watcher, bus = await watch_venue(anvil, deployer, tmp_path)
    result = await play_followed(scenario, venue, build, watcher)
    await watcher.close()
    assert result.fraction > 0.5  # the drain worked: there was something to detect
    loops = [s for s in result.steps if s.phase is Phase.STRIKE and s.ok and s.label.startswith("flash loop")]
    assert len(loops) >= 10
    found = [f for f in bus.items if f.monitor_id == "vault-round-trip"]
    assert {f.tx_hash for f in found} == {s.tx_hash for s in loops}  # each loop, nothing else
    assert all(f.severity is Severity.CRITICAL for f in found)
    assert (
        found[0].evidence["logs"].count("vault.Deposit") == 1
        and "vault.Withdraw" in found[0].evidence["logs"]
    )
    assert watcher.engine.errors == 0


async def test_slow_squeeze_breaks_the_open_interest_limit_at_the_first_position_past_the_safe_cap(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    scenario = SCENARIOS["slow-squeeze"]
    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
    safe_cap = (
        deploy_venue(Deployer(deployer.w3, build), VenueOptions()).guard.functions.openInterestCap(2).call()
    )
    assert safe_cap == 400_000 * USD  # the limit in examples/venue.yaml is the safe venue's cap
    watcher, bus = await watch_venue(anvil, deployer, tmp_path)
    result = await play_followed(scenario, venue, build, watcher)
    await watcher.close()
    first_open = next(s for s in result.steps if s.label == "open long #1")
    [finding] = [f for f in bus.items if f.monitor_id == "thin-open-interest"]  # fires once, stays broken
    assert finding.severity is Severity.CRITICAL and finding.labels["market"] == "2"
    assert finding.block_number == first_open.block
    assert watcher.engine.errors == 0
