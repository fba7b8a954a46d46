"""The ``venue`` deployment set: every contract named in the manifest, governance handed to the timelock."""

from __future__ import annotations

import json

import pytest
from web3 import Web3

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import DEPLOYMENT_SETS, Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import Venue, role_key

pytestmark = pytest.mark.node

NAMES = {
    "usd", "thin_token", "guardian", "forwarder", "oracle", "vault", "insurance", "feed_eth", "feed_btc",
    "amm_thin", "market_eth", "market_btc", "market_thin", "mixer", "flash_lender", "safe",
    "safe_singleton", "safe_proxy_factory", "timelock",
}  # fmt: skip


def test_the_venue_set_writes_a_manifest_of_named_contracts_and_roles(
    w3: Web3, build: Build, chain: Anvil
) -> None:
    deployer = Deployer(w3, build)
    DEPLOYMENT_SETS["venue"](deployer)
    manifest = deployer.manifest(chain.url)
    assert set(manifest.contracts) == NAMES
    assert manifest.accounts["guardian"] == role_key("guardian").address
    text = json.dumps(manifest.to_json())
    assert role_key("guardian").key.hex().removeprefix("0x") not in text  # addresses, never keys
    venue = Venue.from_manifest(w3, manifest)
    assert venue.vault.functions.cash().call() >= 10_000_000 * 10**6  # LPs plus seeded fees


def test_governance_belongs_to_the_timelock_alone(venues: dict[str, Venue]) -> None:
    venue = venues["safe"]
    guard = venue.guard.functions
    admin, governor = guard.DEFAULT_ADMIN_ROLE().call(), guard.GOVERNOR_ROLE().call()
    timelock = venue["timelock"].address
    assert guard.hasRole(admin, timelock).call() and guard.hasRole(governor, timelock).call()
    deployer = role_key("deployer").address
    assert not guard.hasRole(admin, deployer).call() and not guard.hasRole(governor, deployer).call()
    assert guard.hasRole(guard.GUARDIAN_ROLE().call(), role_key("guardian").address).call()
    assert not guard.hasRole(governor, role_key("guardian").address).call()
    proposer = venue["timelock"].functions.PROPOSER_ROLE().call()
    assert venue["timelock"].functions.hasRole(proposer, venue["safe"].address).call()
    assert venue["safe"].functions.getThreshold().call() == 2
    # the exposed-admin deployment is the one where the deployer kept the admin role
    exposed = venues["exposed_admin"].guard.functions
    assert exposed.hasRole(admin, deployer).call()
