"""A benign run on a fresh devnet: what ``breakglass drill benign`` calls."""

from __future__ import annotations

from web3 import Web3

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.venue import deploy_venue
from breakglass.drills.benign.report import BenignConfig, BenignReport
from breakglass.drills.benign.traffic import BenignTraffic

__all__ = ["run_on_fresh_devnet"]


def run_on_fresh_devnet(config: BenignConfig, blocks: int) -> BenignReport:
    """Start anvil, deploy the safe venue, fund the participants, and generate ``blocks`` blocks."""
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        venue = deploy_venue(Deployer(w3, compile_contracts()))
        traffic = BenignTraffic(venue, config)
        traffic.fund()
        return traffic.run(blocks)
