"""The Safe flow end to end on a real Safe v1.4.1: a playbook proposes, 2 of 3 owners sign, it executes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from respond_support import Harness, Venue, deploy_safe, deploy_venue, finding
from web3 import Web3

from breakglass.bus import Topics
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build
from breakglass.errors import ResponseError
from breakglass.respond import ActionStep, LocalSigner

pytestmark = pytest.mark.node

VIA_SAFE = """
- id: via-safe
  match: {monitors: [oracle-deviation]}
  actions:
    - kind: call
      id: pause-market
      contract: venue
      function: pauseMarket
      args: ["{labels.market}"]
      via: safe:governance
"""


async def test_a_safe_proposal_executes_once_two_of_three_owners_signed(
    anvil: Anvil, mocks: Build, tmp_path: Path, harness_factory: Callable[..., Harness]
) -> None:
    owners = [LocalSigner(Account.create()) for _ in range(3)]
    safe = deploy_safe(Web3(Web3.HTTPProvider(anvil.url)), [o.address for o in owners], 2)
    venue = deploy_venue(anvil, mocks, tmp_path, admin=safe)  # governance (the Safe) is the venue's admin
    harness = harness_factory(venue, VIA_SAFE, extra=f"safes:\n  - {{name: governance, address: '{safe}'}}\n")
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    responder = await harness.responder()
    service = responder.safes
    assert service is not None

    [proposed] = await responder.handle(finding(market="3"))
    assert proposed.step is ActionStep.PROPOSED
    assert (await responder.handle(finding(market="3")))[0].step is ActionStep.DUPLICATE
    safe_tx_hash = str(proposed.detail["safe_tx_hash"])
    shown = await service.describe(safe_tx_hash)
    assert shown["call"] == "venue.pauseMarket(3)" and shown["threshold"] == 2 and shown["safe_nonce"] == 0
    assert shown["to"] == venue.contract.address and shown["chain_id"] == 31337 and shown["signed_by"] == []

    stranger = LocalSigner(Account.create())
    with pytest.raises(ResponseError, match="not an owner"):
        await service.add_signature(safe_tx_hash, stranger.sign_hash(bytes.fromhex(safe_tx_hash[2:])))
    assert (
        await service.add_signature(safe_tx_hash, owners[2].sign_hash(bytes.fromhex(safe_tx_hash[2:])))
        == owners[2].address
    )
    assert await service.execute_if_ready(safe_tx_hash) is None  # 1 of 2: nothing sent
    assert not venue.view("marketPaused", 3)

    await service.add_signature(safe_tx_hash, owners[0].sign_hash(bytes.fromhex(safe_tx_hash[2:])))
    submitted = await service.execute_if_ready(safe_tx_hash)
    assert submitted is not None and submitted.step is ActionStep.SUBMITTED
    done = await responder.relayer.wait(submitted.key)  # type: ignore[union-attr]
    assert done.step is ActionStep.CONFIRMED
    assert venue.view("marketPaused", 3)
    assert await service.pending() == []
    assert await service.execute_if_ready(safe_tx_hash) is None  # executed once, never again
    safe_nonce = (
        Web3(Web3.HTTPProvider(anvil.url))
        .eth.contract(
            address=safe,
            abi=[
                {
                    "type": "function",
                    "name": "nonce",
                    "inputs": [],
                    "outputs": [{"type": "uint256", "name": ""}],
                    "stateMutability": "view",
                }
            ],
        )
        .functions.nonce()
        .call()
    )
    assert safe_nonce == 1
    steps = [(await anext(actions)).step for _ in range(5)]
    signed = ActionStep.SAFE_SIGNED
    assert steps == [ActionStep.PROPOSED, ActionStep.DUPLICATE, signed, signed, ActionStep.SUBMITTED]


async def test_a_proposal_that_cannot_be_made_is_audited_and_its_key_given_back(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    not_a_safe = venue.w3.eth.accounts[7]  # an EOA: every Safe read comes back empty
    harness = harness_factory(
        venue, VIA_SAFE, extra=f"safes:\n  - {{name: governance, address: '{not_a_safe}'}}\n"
    )
    responder = await harness.responder()
    [first] = await responder.handle(finding(market="3"))
    assert first.step is ActionStep.FAILED and "is it a Safe" in str(first.detail["error"])
    [again] = await responder.handle(finding(market="3"))
    assert again.step is ActionStep.FAILED  # not DUPLICATE: the key was released, a repeat tries again
    steps = [r.step for r in await responder.ledger.history(first.key)]
    assert steps == ["intent", "failed", "intent", "failed"]
