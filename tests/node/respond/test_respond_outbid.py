"""Front-running a pending exploit: the pause outbids the attacker's tip and is ordered first in the block."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from respond_support import Harness, Venue, finding

from breakglass.respond import ActionStep, PendingFees

pytestmark = pytest.mark.node

PAUSE_MARKET = """
- id: pause
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{labels.market}"]}
"""


@pytest.mark.parametrize("how", ["argument", "evidence"])
async def test_the_pause_outbids_a_pending_attack_and_lands_before_it(
    venue: Venue, harness_factory: Callable[..., Harness], how: str
) -> None:
    w3, node = venue.w3, venue.node
    node.rpc("evm_setAutomine", False)
    attacker = w3.eth.accounts[5]
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    tip = w3.to_wei(40, "gwei")  # far above the responder's configured 1 gwei tip
    attack = venue.contract.functions.trade(7).transact(
        {"from": attacker, "gas": 100_000, "maxPriorityFeePerGas": tip, "maxFeePerGas": 3 * base + tip}
    )
    pending = w3.eth.get_transaction(attack)
    fees = PendingFees(pending["maxFeePerGas"], pending["maxPriorityFeePerGas"])
    harness = harness_factory(venue, PAUSE_MARKET)
    responder = await harness.responder()
    if how == "argument":
        [sent] = await responder.handle(finding(), outbid=fees)
    else:  # the mempool stage's convention: the pending transaction's fees in the finding's evidence
        evidence = {
            "max_fee_per_gas": fees.max_fee_per_gas,
            "max_priority_fee_per_gas": fees.max_priority_fee_per_gas,
        }
        [sent] = await responder.handle(finding(pending_fees=evidence))
    assert sent.step is ActionStep.SUBMITTED
    assert int(sent.detail["max_priority_fee_per_gas"]) > tip * 1.25
    node.mine()
    ours = w3.eth.get_transaction_receipt(sent.tx_hash)
    theirs = w3.eth.get_transaction_receipt(attack)
    assert ours["blockNumber"] == theirs["blockNumber"]
    assert ours["transactionIndex"] < theirs["transactionIndex"]  # the pause first
    assert ours["status"] == 1 and theirs["status"] == 0  # and the attack reverts on the paused market
