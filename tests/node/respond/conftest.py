"""Fixtures of the response tests on anvil: the mock contracts, a deployed guarded venue, harnesses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from respond_support import DEFAULT_PLAYBOOKS, Harness, Venue, deploy_venue, write_config

from breakglass.bus import InProcessBus
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.logs import Redactor


@pytest.fixture(scope="session")
def mocks() -> Build:
    """Only contracts/mocks: the response tests do not depend on the venue compiling."""
    return compile_contracts(["contracts/mocks"])


@pytest.fixture
def venue(anvil: Anvil, mocks: Build, tmp_path: Path) -> Venue:
    return deploy_venue(anvil, mocks, tmp_path)


@pytest.fixture
async def harness_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(
        venue: Venue,
        playbooks: str = DEFAULT_PLAYBOOKS,
        bump_after: int = 2,
        extra: str = "",
        policy: str = "",
    ) -> Harness:
        config = load_config(write_config(venue.manifest.parent, playbooks, bump_after, extra, policy))
        harness = Harness(config, venue, InProcessBus(), Redactor(), [])
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.close()
