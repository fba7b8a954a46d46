"""The exploit library: each scenario takes a large fraction of its target when its switch is on, and
fails on the safe venue; a defender's pause mid-strike is recorded, never a crash."""

from __future__ import annotations

import pytest

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import Venue
from breakglass.drills.scenarios import SCENARIOS, Phase, ScenarioRun, play

pytestmark = pytest.mark.node


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_drains_most_of_its_target_when_its_vulnerability_is_on(
    name: str, venues: dict[str, Venue], chain: Anvil, build: Build
) -> None:
    scenario = SCENARIOS[name]
    venue = venues[scenario.switches[0]]
    result = play(scenario, venue, build)
    assert result.target > 0
    assert result.fraction >= 0.5, result.to_json()
    setup = [s for s in result.steps if s.phase is Phase.SETUP]
    assert setup[-1].ok and result.attack_contracts  # the attack contract was deployed before striking
    assert any("mixer" in s.label for s in setup)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_fails_on_the_safe_venue(
    name: str, venues: dict[str, Venue], chain: Anvil, build: Build
) -> None:
    result = play(SCENARIOS[name], venues["safe"], build)
    assert result.loss <= 0.01 * result.target, result.to_json()


def test_a_guardian_pause_mid_strike_is_recorded_and_stops_the_loss(
    venues: dict[str, Venue], chain: Anvil, build: Build
) -> None:
    venue = venues["spot_valuation"]
    run = ScenarioRun(SCENARIOS["repeated-drain"], venue, build)
    run.fund_dirty_wallet()
    strikes = 0
    for phase, step in run.steps():
        run.execute(phase, step)
        if phase is Phase.STRIKE:
            strikes += 1
            if strikes == 3:  # funding and two loops landed; the defender pauses now
                venue.send(venue.key("guardian"), venue.guard.functions.pauseVenue())
    result = run.finish()
    strike = [s for s in result.steps if s.phase is Phase.STRIKE]
    assert all(s.ok for s in strike[:3])
    assert not any(s.ok for s in strike[3:-1])  # every later loop reverted and was recorded
    assert 0 < result.fraction < 0.25
