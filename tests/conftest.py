"""Fixtures shared by every suite: the compiled contracts, anvil nodes, and service URLs.

PostgreSQL tests run when ``BREAKGLASS_TEST_POSTGRES_URL`` is set (CI sets it); elsewhere they are
skipped with that instruction, unless ``BREAKGLASS_REQUIRE_SERVICES=1`` makes a missing server fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.testing import service_url

# pytest-xdist gives its workers COLUMNS=80 and LINES=24. A rich Console created at import (the CLI
# modules') would keep that width for good, so a CLI test's own COLUMNS would never reach it and its
# output would wrap where a plain run's does not. A worker has no terminal: let consoles size themselves.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


@pytest.fixture(scope="session")
def build() -> Build:
    """Every contract under contracts/, compiled once per session (and cached across sessions)."""
    return compile_contracts()


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A fresh automining anvil, stopped after the test whatever its outcome."""
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        yield node


@pytest.fixture
def anvil_factory() -> Iterator[Callable[..., Anvil]]:
    """Start anvil nodes with any options; all are stopped after the test."""
    nodes: list[Anvil] = []

    def start(**options: object) -> Anvil:
        node = Anvil(AnvilOptions(**options)).start()  # type: ignore[arg-type]
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1:5432/test"
    )
