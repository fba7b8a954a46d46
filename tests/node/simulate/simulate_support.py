"""Helpers of the attack-contract simulation tests: the reference venue on anvil with one switch, a
watcher and attack simulator on ``examples/venue.yaml`` pointed at it, and deploying and sending as a
given account.

A uniquely named module (not ``conftest``) so that tests import it without clashing with other suites.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from web3 import Web3
from web3.contract import Contract

from breakglass.chain.follower import fetch_blocks
from breakglass.config import load_config
from breakglass.detect.service import Watcher, build_watcher
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import Venue, VenueOptions, deploy_venue
from breakglass.simulate import AttackSimulator, build_attack_simulation

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "venue.yaml"


@dataclass
class Chain:
    node: Anvil
    w3: Web3
    build: Build
    venue: Venue
    manifest: Path
    gas: int = 5_000_000
    """the gas limit of each ``send``"""


@contextlib.contextmanager
def venue_chain(build: Build, folder: Path, switch: str, *, gas: int = 5_000_000) -> Iterator[Chain]:
    """An automining anvil with the reference venue deployed with ``switch`` on, its manifest in
    ``folder``; stopped on exit."""
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(switch))
        manifest = folder / "manifest.json"
        deployer.manifest(node.url).write(manifest)
        yield Chain(node, w3, build, venue, manifest, gas)


@contextlib.asynccontextmanager
async def probe(
    chain: Chain, folder: Path, funds: dict[str, int] | None = None
) -> AsyncIterator[tuple[Watcher, AttackSimulator]]:
    """A watcher and a started attack simulator on ``examples/venue.yaml`` (its ``attack_simulation.funds``
    replaced by ``funds``, if given) with a store in ``folder``; the chain is reverted to where it was on
    exit."""
    snapshot = chain.node.snapshot()
    config_data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config_data.update(deployment=str(chain.manifest), store={"url": f"sqlite:///{folder / 'store.db'}"})
    if funds:
        config_data["attack_simulation"]["funds"] = funds
    (folder / "venue.yaml").write_text(yaml.safe_dump(config_data), encoding="utf-8")
    config = load_config(folder / "venue.yaml", environ={})
    watcher = build_watcher(config, None)
    service = build_attack_simulation(config, watcher, None)
    await service.start()
    [head] = await fetch_blocks(watcher.rpc, [chain.w3.eth.block_number])
    await watcher.engine.evaluate(head)  # the invariants' prev values, as on a running follower
    try:
        yield watcher, service.simulator
    finally:
        await watcher.close()
        chain.node.revert(snapshot)


def deploy(chain: Chain, sender: str, artifact: str, *args: Any) -> tuple[Contract, int]:
    """``artifact`` deployed by ``sender``, and the block it was deployed in."""
    art = chain.build[artifact]
    factory = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    receipt = chain.w3.eth.wait_for_transaction_receipt(factory.constructor(*args).transact({"from": sender}))
    assert receipt["status"] == 1
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=art.abi), receipt["blockNumber"]


def send(chain: Chain, fn: Any, sender: str) -> int:
    """The block the call ``fn`` from ``sender`` landed in; -1 if it reverted."""
    receipt = chain.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": chain.gas}))
    return int(receipt["blockNumber"]) if receipt["status"] == 1 else -1
