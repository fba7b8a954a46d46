"""Arguments derived from what a contract holds: an attack contract whose strike takes a market, a
leveraged size, a margin and a loop count (donation-insolvency's ``rounds``) is proven harmful once it is
funded, before its first strike (honest contracts holding the venue's token stay quiet:
test_attack_contracts.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from simulate_support import Chain, deploy, probe, send, venue_chain
from web3 import Web3

from breakglass.chain.follower import fetch_blocks
from breakglass.detect.service import Watcher
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.simulate import AttackSimulator

pytestmark = [pytest.mark.node, pytest.mark.slow]


async def examine(watcher: Watcher, simulator: AttackSimulator, number: int) -> list[Finding]:
    [block] = await fetch_blocks(watcher.rpc, [number])
    return await simulator.examine(block)


@pytest.fixture(scope="module")
def chain(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with venue_chain(build, tmp_path_factory.mktemp("derived"), "donation_unchecked") as chain:
        yield chain


@pytest.fixture
async def probing(chain: Chain, tmp_path: Path) -> AsyncIterator[tuple[Watcher, AttackSimulator]]:
    async with probe(chain, tmp_path) as probing:
        yield probing


async def test_a_funded_donation_attack_is_proven_before_its_first_strike(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    watcher, simulator = probing
    venue, attacker = chain.venue, chain.w3.eth.accounts[7]
    args = (venue.usd.address, venue.vault.address, venue["insurance"].address)
    attack, deployed = deploy(chain, attacker, "DonationAttack", *args)
    assert await examine(watcher, simulator, deployed) == []  # holding nothing, it can do nothing
    assert send(chain, venue.usd.functions.mint(attacker, 500_000 * USD), attacker) > 0
    funded = send(chain, venue.usd.functions.transfer(attack.address, 500_000 * USD), attacker)
    assert funded > 0
    findings = await examine(watcher, simulator, funded)

    assert findings, simulator.stats
    assert {f.stage for f in findings} == {FindingStage.SETUP_PROVEN}
    assert all(f.severity is Severity.CRITICAL for f in findings)
    proof = findings[0].evidence
    rounds = "0x" + Web3.keccak(text="rounds(address,uint256,uint256,uint256)")[:4].hex()
    assert [c["selector"] for c in proof["calls"]] == [rounds]
    assert proof["calls"][0]["from"] == attacker.lower()
    # the proof is of a real harm: the call it names takes the insurance fund on chain
    before = venue.balances()
    data = bytes.fromhex(proof["calls"][0]["input"][2:])
    tx = {"from": attacker, "to": attack.address, "data": data, "gas": 15_000_000}
    receipt = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction(tx))
    assert receipt["status"] == 1
    assert venue.balances().insurance < before.insurance - 100_000 * USD
