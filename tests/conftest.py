"""Fixtures shared by every suite: the compiled contracts, anvil nodes, and service URLs.

PostgreSQL tests run when ``BREAKGLASS_TEST_POSTGRES_URL`` is set (CI sets it); elsewhere they are
skipped with that instruction, unless ``BREAKGLASS_REQUIRE_SERVICES=1`` makes a missing server fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.testing import drop_lease_buckets, postgres_database, service_url

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


@pytest.fixture(params=["nats", pytest.param("postgres", marks=pytest.mark.postgres)])
def lease_backends(request: pytest.FixtureRequest) -> Iterator[Callable[[], Any]]:
    """Makes lease backends (``breakglass.ha``) on one real server, a new one per call (each process,
    each renewing thread, its own connection): NATS KV under a prefix of the test's own, or a
    PostgreSQL database of the test's own; both dropped after the test."""
    if request.param == "nats":
        from breakglass.ha.nats import NatsLeaseBackend

        url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
        prefix = f"lease{uuid.uuid4().hex[:8]}"
        yield lambda: NatsLeaseBackend(url, prefix=prefix)
        asyncio.run(drop_lease_buckets(url, prefix))
        return
    from breakglass.ha.postgres import PostgresLeaseBackend

    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield lambda: PostgresLeaseBackend(url)
