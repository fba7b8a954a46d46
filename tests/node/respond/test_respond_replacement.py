"""A stuck containment transaction is replaced: same nonce, higher fees, and only the replacement lands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from respond_support import PAUSE_ONLY, Harness, Venue, finding

from breakglass.respond import ActionStep

pytestmark = pytest.mark.node


async def test_a_transaction_priced_out_by_a_base_fee_spike_is_bumped_and_the_replacement_lands(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    node = venue.node
    node.rpc("evm_setAutomine", False)  # manual mining from here on: nothing lands unless we mine
    harness = harness_factory(venue, PAUSE_ONLY, bump_after=1)
    responder = await harness.responder()
    relayer = responder.relayer
    assert relayer is not None
    [sent] = await responder.handle(finding())
    original = sent.tx_hash
    assert sent.step is ActionStep.SUBMITTED and sent.nonce == 0

    # The base fee jumps above the original max fee: the transaction is valid but cannot be included.
    spike = int(sent.detail["max_fee_per_gas"]) * 3
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(spike))
    node.mine()
    assert venue.w3.eth.get_transaction_count(venue.guardian, "latest") == 0
    assert not venue.view("paused")

    assert await responder.poll() == []  # one block later and still pending: poll() bumps it
    [replacement_hash] = relayer.pending()[sent.key][1:]
    history = await responder.ledger.history(sent.key)
    replaced = history[-1]
    assert replaced.step == "replaced" and replaced.nonce == 0 and replaced.detail["replaces"] == original
    assert int(replaced.detail["max_fee_per_gas"]) > spike
    pool = node.rpc("txpool_content")["pending"]
    [by_nonce] = pool.values()
    assert [tx["hash"] for tx in by_nonce.values()] == [replacement_hash]  # the node dropped the original

    node.mine()
    [done] = await responder.poll()
    assert (
        done.step is ActionStep.CONFIRMED
        and done.tx_hash == replacement_hash
        and done.detail["replacements"] == 1
    )
    assert venue.view("paused")
    assert venue.w3.eth.get_transaction_count(venue.guardian, "latest") == 1  # nonce 0 used once
    assert node.rpc("eth_getTransactionReceipt", original) is None
