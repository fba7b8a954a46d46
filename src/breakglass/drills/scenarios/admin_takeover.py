"""admin-takeover — a compromised admin key (or a malicious governance proposal, Beanstalk, Apr 2022):
the governor role granted to the attacker's contract, oracles replaced, insurance and liquidity drained."""

from __future__ import annotations

from collections.abc import Iterator

from web3 import Web3

from breakglass.devnet.venue import MARKETS, USD, Venue, role_key
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step


class AdminTakeover(Scenario):
    name = "admin-takeover"
    incident = "compromised admin key / Beanstalk governance, 2022-04-17 (~$182M)"
    summary = "the leaked deployer key grants governance to the attacker, who re-points oracles and drains"
    switches = ("exposed_admin",)
    target_label = "LP vault and insurance fund"
    funding_usd = 10_000 * USD

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract",
            "AdminTakeoverAttack",
            v.usd.address,
            v["oracle"].address,
            v.vault.address,
            v["insurance"].address,
        )

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        attack = ctx.attack("AdminTakeoverAttack")
        governor = Web3.keccak(text="GOVERNOR_ROLE")
        yield ctx.call(
            "leaked admin key grants GOVERNOR_ROLE",
            v.guard,
            "grantRole",
            governor,
            attack.address,
            signer=role_key("deployer"),
            gas=200_000,
            wait_seconds=24,
        )
        markets = [v[key].address for key, _ in MARKETS]
        yield ctx.call(
            "re-point oracles, take insurance, trade compartments empty",
            attack,
            "drain",
            markets,
            gas=6_000_000,
            wait_seconds=2,
        )

    def target(self, venue: Venue) -> int:
        return venue.balances().at_risk
