"""Playing a scenario on a fresh devnet: start anvil, deploy the venue with the scenario's vulnerability
switched on (or the safe venue), play, stop. What ``breakglass drill run`` calls."""

from __future__ import annotations

from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.drills.scenarios.base import Scenario
from breakglass.drills.scenarios.player import ScenarioResult, play
from breakglass.errors import DevnetError

__all__ = ["play_on_fresh_devnet", "resolve"]


def resolve(name: str) -> list[Scenario]:
    """``all`` or one scenario name; an unknown name lists the known ones."""
    from breakglass.drills.scenarios import SCENARIOS

    if name == "all":
        return list(SCENARIOS.values())
    if name not in SCENARIOS:
        raise DevnetError(f"unknown scenario {name!r} (known: all, {', '.join(sorted(SCENARIOS))})")
    return [SCENARIOS[name]]


def play_on_fresh_devnet(
    scenario: Scenario,
    *,
    vulnerable: bool = True,
    mode: BlockMode = BlockMode.AUTO,
    block_time: float = 1.0,
    time_scale: float = 0.02,
    build: Build | None = None,
) -> ScenarioResult:
    """Undefended play on its own anvil. Interval mode waits in real time, each step's wait scaled by
    ``time_scale`` (0.02: an attacker's 10 minutes become 12 seconds)."""
    build = build or compile_contracts()
    options = VenueOptions.with_switches(*scenario.switches) if vulnerable else VenueOptions()
    # Deploy on automine (seconds, not a block per deployment tx), then switch to the asked mode.
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        venue = deploy_venue(Deployer(w3, build), options)
        interval = mode is BlockMode.INTERVAL
        if interval:
            node.rpc("evm_setIntervalMining", max(1, round(block_time)))
        elif mode is BlockMode.MANUAL:
            raise DevnetError("scenarios play on automine or interval mining, not manual")
        return play(scenario, venue, build, fast_forward=not interval, time_scale=time_scale)
