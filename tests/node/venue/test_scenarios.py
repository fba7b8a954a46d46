"""The exploit library: each scenario takes a large fraction of its target when its switch is on, and
fails on the safe venue; a defender's pause mid-strike is recorded, never a crash."""

from __future__ import annotations

import pytest

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, dev_key
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


def test_a_keeper_step_executes_the_order_the_chain_recorded_and_none_when_its_creation_reverted(
    venues: dict[str, Venue], chain: Anvil, build: Build
) -> None:
    # reentrant-aum's keeper once executed `orderCount() - 1`, read before it knew whether the
    # attacker's createOrder had created anything: when the defense blocked the attack contract first,
    # that was order -1 and the drill crashed (issue 20). The id now comes from the order's receipt.
    scenario = SCENARIOS["reentrant-aum"]
    venue = venues[scenario.switches[0]]
    run = ScenarioRun(scenario, venue, build)
    run.fund_dirty_wallet()
    for phase, step in run.steps():
        result = run.execute(phase, step)
        if result.label == "fund attack contract":  # a guardian's block lands now
            attack = run.ctx.contracts["ReentrantAumAttack"]
            venue.send(venue.key("guardian"), venue.guard.functions.blockAccount(attack))
    played = run.finish()
    labels = {s.label: s for s in played.steps}
    assert not labels["increase order (short)"].ok and not labels["decrease order (the trigger)"].ok
    assert not any("keeper executes" in s.label for s in played.steps)  # no order, nothing to execute
    assert played.loss <= 0


def test_the_keeper_executes_the_attackers_order_by_its_id_though_an_honest_order_came_after_it(
    venues: dict[str, Venue], chain: Anvil, build: Build
) -> None:
    scenario = SCENARIOS["reentrant-aum"]
    venue = venues[scenario.switches[0]]
    market = venue.market(0)
    honest = dev_key(40)
    venue.fund(honest.address, usd=50_000 * USD, eth=10**18)
    venue.send(honest, venue.usd.functions.approve(market.address, 2**255))
    run = ScenarioRun(scenario, venue, build)
    run.fund_dirty_wallet()
    executed: list[int] = []
    for phase, step in run.steps():
        if "keeper executes" in step.label:
            executed.append(int.from_bytes(bytes(step.data)[4:36], "big"))
        run.execute(phase, step)
        if step.label.endswith("order (short)") or step.label.startswith("decrease order"):
            # an honest trader's order lands right after the attacker's, before the keeper looks
            fee = 2 * market.functions.minExecutionFee().call()
            create = market.functions.createOrder(True, True, 2_000 * USD, 10_000 * USD, 0)
            venue.send(honest, create, value=fee)
    assert len(executed) == 2
    attack = run.ctx.contracts["ReentrantAumAttack"]
    assert [market.functions.orders(i).call()[0] for i in executed] == [attack, attack]
