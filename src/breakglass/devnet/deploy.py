"""Deploying compiled contracts to a devnet and recording them in a manifest.

Deployment sets are named recipes (``toolchain``, later ``venue``) registered in ``DEPLOYMENT_SETS``;
``breakglass devnet up --set NAME`` runs one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from breakglass.devnet.manifest import ContractRecord, Manifest
from breakglass.devnet.solc import Build
from breakglass.errors import DevnetError

__all__ = ["DEPLOYMENT_SETS", "Deployer", "deploy_toolchain_set"]


class Deployer:
    """Deploys artifacts from one build with anvil's unlocked dev accounts, and remembers them."""

    def __init__(self, w3: Web3, build: Build, *, sender: ChecksumAddress | None = None) -> None:
        self.w3 = w3
        self.build = build
        self.sender = sender
        self.records: dict[str, ContractRecord] = {}
        self.accounts: dict[str, str] = {}

    def _from(self) -> ChecksumAddress:
        return self.sender or self.w3.eth.accounts[0]

    def deploy(self, name: str, artifact: str, *args: Any, sender: str | None = None) -> Contract:
        if name in self.records:
            raise DevnetError(f"a contract named {name!r} is already deployed")
        art = self.build[artifact]
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": sender or self._from()})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise DevnetError(f"deploying {name} ({artifact}) reverted")
        address = receipt["contractAddress"]
        self.records[name] = ContractRecord(address=address, abi=art.abi, artifact=artifact)
        return self.w3.eth.contract(address=address, abi=art.abi)

    def manifest(self, rpc_url: str, **meta: Any) -> Manifest:
        """The manifest of what was deployed so far; the current head is the deployment block."""
        return Manifest(
            chain_id=self.w3.eth.chain_id,
            rpc_url=rpc_url,
            contracts=dict(self.records),
            accounts=dict(self.accounts),
            meta=meta,
            deployer=self._from(),
            deployment_block=self.w3.eth.block_number,
        )


def deploy_toolchain_set(deployer: Deployer) -> None:
    """The smallest set that proves the toolchain: one OpenZeppelin-based token."""
    token = deployer.deploy("usd", "MockERC20", "Test USD", "tUSD", 6)
    owner = deployer._from()
    tx = token.functions.mint(owner, 1_000_000 * 10**6).transact({"from": owner})
    deployer.w3.eth.wait_for_transaction_receipt(tx)
    deployer.accounts["deployer"] = owner


def _deploy_venue_set(deployer: Deployer) -> None:
    """The reference venue (imported lazily: its package builds on this module)."""
    from breakglass.devnet.venue.deploy import deploy_venue_set

    deploy_venue_set(deployer)


DEPLOYMENT_SETS: dict[str, Callable[[Deployer], None]] = {
    "toolchain": deploy_toolchain_set,
    "venue": _deploy_venue_set,
}
