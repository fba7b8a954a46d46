"""Shared fixtures of the venue suite: one anvil per session holding a safe venue and one venue per
vulnerability switch, and a chain snapshot reverted after every test so tests never see each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VULNERABILITIES, Venue, VenueOptions, deploy_venue


@pytest.fixture(scope="session")
def chain() -> Iterator[Anvil]:
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        yield node


@pytest.fixture(scope="session")
def w3(chain: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(chain.url))


@pytest.fixture(scope="session")
def venues(w3: Web3, build: Build) -> dict[str, Venue]:
    """``safe`` (every switch off) and one venue per vulnerability switch, side by side on one chain."""
    out = {"safe": deploy_venue(Deployer(w3, build), VenueOptions())}
    for switch in VULNERABILITIES:
        out[switch] = deploy_venue(Deployer(w3, build), VenueOptions.with_switches(switch))
    return out


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """Revert the session chain after each test (only for tests that use it)."""
    if "chain" not in request.fixturenames:
        yield
        return
    node: Anvil = request.getfixturevalue("chain")
    request.getfixturevalue("venues")
    snapshot = node.snapshot()
    yield
    node.revert(snapshot)


@pytest.fixture
def venue(venues: dict[str, Venue], chain: Anvil) -> Venue:
    return venues["safe"]


def _revert_code(contract: Any, name: str) -> str:
    for item in contract.abi:
        if item.get("type") == "error" and item["name"] == name:
            types = ",".join(i["type"] for i in item["inputs"])
            return Web3.keccak(text=f"{name}({types})")[:4].hex().removeprefix("0x")
    raise AssertionError(f"{name} is not an error of this contract")


@pytest.fixture(scope="session")
def revert_code() -> Callable[[Any, str], str]:
    """``revert_code(contract, "Name")``: a regex matching that custom error's revert data."""
    return _revert_code
