"""Arguments derived from what a contract holds: an attack contract whose strike takes a market, a
leveraged size, a margin and a loop count (donation-insolvency's ``rounds``) is proven harmful once it is
funded, before its first strike (honest contracts holding the venue's token stay quiet:
test_attack_contracts.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import Web3
from web3.contract import Contract

from breakglass.chain.follower import fetch_blocks
from breakglass.config import load_config
from breakglass.detect.service import Watcher, build_watcher
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, VenueOptions, deploy_venue
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.simulate import AttackSimulator, build_attack_simulation

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "venue.yaml"


@dataclass
class Chain:
    node: Anvil
    w3: Web3
    build: Build
    venue: Venue
    manifest: Path


def deploy(chain: Chain, sender: str, artifact: str, *args: Any) -> tuple[Contract, int]:
    art = chain.build[artifact]
    factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = chain.w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    assert receipt["status"] == 1
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=art.abi), receipt["blockNumber"]


def send(chain: Chain, fn: Any, sender: str) -> int:
    receipt = chain.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": 5_000_000}))
    assert receipt["status"] == 1
    return int(receipt["blockNumber"])


async def examine(watcher: Watcher, simulator: AttackSimulator, number: int) -> list[Finding]:
    [block] = await fetch_blocks(watcher.rpc, [number])
    return await simulator.examine(block)


@pytest.fixture(scope="module")
def chain(build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches("donation_unchecked"))
        manifest = tmp_path_factory.mktemp("derived") / "manifest.json"
        deployer.manifest(node.url).write(manifest)
        yield Chain(node, w3, build, venue, manifest)


@pytest.fixture
async def probing(chain: Chain, tmp_path: Path) -> AsyncIterator[tuple[Watcher, AttackSimulator]]:
    snapshot = chain.node.snapshot()
    config_data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config_data.update(deployment=str(chain.manifest), store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    (tmp_path / "venue.yaml").write_text(yaml.safe_dump(config_data), encoding="utf-8")
    config = load_config(tmp_path / "venue.yaml", environ={})
    watcher = build_watcher(config, None)
    service = build_attack_simulation(config, watcher, None)
    await service.start()
    [head] = await fetch_blocks(watcher.rpc, [chain.w3.eth.block_number])
    await watcher.engine.evaluate(head)
    try:
        yield watcher, service.simulator
    finally:
        await watcher.close()
        chain.node.revert(snapshot)


async def test_a_funded_donation_attack_is_proven_before_its_first_strike(
    chain: Chain, probing: tuple[Watcher, AttackSimulator]
) -> None:
    watcher, simulator = probing
    venue, attacker = chain.venue, chain.w3.eth.accounts[7]
    args = (venue.usd.address, venue.vault.address, venue["insurance"].address)
    attack, deployed = deploy(chain, attacker, "DonationAttack", *args)
    assert await examine(watcher, simulator, deployed) == []  # holding nothing, it can do nothing
    send(chain, venue.usd.functions.mint(attacker, 500_000 * USD), attacker)
    funded = send(chain, venue.usd.functions.transfer(attack.address, 500_000 * USD), attacker)
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
