"""The exploit library: each scenario re-creates a real incident's mechanics on the reference venue.

``SCENARIOS`` maps a scenario's name to an instance; see docs/scenarios.md and ``player.play``.
"""

from __future__ import annotations

from breakglass.drills.scenarios.admin_takeover import AdminTakeover
from breakglass.drills.scenarios.base import AttackContext, Phase, Scenario, Step, StepResult
from breakglass.drills.scenarios.donation_insolvency import DonationInsolvency
from breakglass.drills.scenarios.forwarder_oracle import ForwarderOracle
from breakglass.drills.scenarios.player import ScenarioResult, ScenarioRun, play
from breakglass.drills.scenarios.reentrant_aum import ReentrantAum
from breakglass.drills.scenarios.repeated_drain import RepeatedDrain
from breakglass.drills.scenarios.slow_squeeze import SlowSqueeze
from breakglass.drills.scenarios.spot_oracle_pump import SpotOraclePump

__all__ = [
    "SCENARIOS",
    "AttackContext",
    "Phase",
    "Scenario",
    "ScenarioResult",
    "ScenarioRun",
    "Step",
    "StepResult",
    "play",
]

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        SpotOraclePump(),
        ForwarderOracle(),
        ReentrantAum(),
        AdminTakeover(),
        DonationInsolvency(),
        SlowSqueeze(),
        RepeatedDrain(),
    )
}
