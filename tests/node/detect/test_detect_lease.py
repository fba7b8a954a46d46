"""Two detect replicas of one chain in one process, sharing a lease backend (issue 19): one follows at
a time; the standby handles no block until it holds ``detect:<chain>``, then resumes at the block after
the shared checkpoint; a replica whose lease ran out publishes nothing more, writes no checkpoint and
stops with ``LeaseLost``. (Real processes killed with SIGKILL: ``tests/e2e/ha``.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from breakglass.bus import InProcessBus, Topics
from breakglass.config import load_config
from breakglass.detect.service import LeaseLost, Watcher, build_watcher
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.domain import Finding
from breakglass.ha import MemoryLeaseBackend
from breakglass.store.migrate import upgrade_async
from breakglass.testing import wait_until

pytestmark = [pytest.mark.node]

CONFIG = """\
deployment: manifest.json
store: {{url: "sqlite:///{db}"}}
chain: {{poll_interval: 0.05}}
ha: {{ttl_seconds: 2}}
monitors:
  - {{id: mints, kind: event, contract: usd, event: Transfer, severity: low}}
"""


class Clock:
    """The lease backend's clock; ``jump`` makes every holding expire at once (a holder that went
    silent: paused, partitioned)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Replicas:
    w3: Web3
    token: Any
    admin: str
    bus: InProcessBus
    clock: Clock
    watchers: list[Watcher]
    findings: list[Finding] = field(default_factory=list)

    def mint(self) -> int:
        """One mint, mined (blocking: run it in a thread, the replicas' leases renew meanwhile)."""
        tx = self.token.functions.mint(self.admin, 1).transact({"from": self.admin})
        return int(self.w3.eth.wait_for_transaction_receipt(tx)["blockNumber"])


@pytest.fixture
async def replicas(anvil: Anvil, build: Build, tmp_path: Path) -> AsyncIterator[Replicas]:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, build)
    token = deployer.deploy("usd", "MockERC20", "Lease USD", "lUSD", 6)
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    path = tmp_path / "bg.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "bg.db"), encoding="utf-8")
    config = load_config(path, environ={})
    await upgrade_async(config.settings.store.url)
    bus, clock = InProcessBus(), Clock()
    backend = MemoryLeaseBackend(clock)
    watchers = [build_watcher(config, bus, lease_backend=backend) for _ in range(2)]
    world = Replicas(w3, token, w3.eth.accounts[0], bus, clock, watchers)
    subscription = bus.subscribe(Topics.FINDINGS, "test")

    async def collect() -> None:
        async for finding in subscription:
            world.findings.append(finding)

    collector = asyncio.create_task(collect())
    try:
        yield world
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        for watcher in watchers:
            await watcher.close()


def run(watcher: Watcher, stop: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.create_task(watcher.run(stop))


async def test_the_standby_waits_then_resumes_at_the_block_after_the_shared_checkpoint(
    replicas: Replicas,
) -> None:
    first, second = replicas.watchers
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = run(first, stop_first)
    await wait_until(lambda: first.follower.last is not None)  # it starts at the head it first sees
    second_task = run(second, stop_second)
    minted = [await asyncio.to_thread(replicas.mint) for _ in range(3)]
    await wait_until(lambda: len(replicas.findings) == 3)
    assert not second.active.is_set() and second.engine.blocks == 0  # stood by: handled nothing
    stop_first.set()  # a clean stop releases the lease: the standby need not wait for its expiry
    await first_task
    reached = first.follower.last
    assert reached is not None
    await wait_until(lambda: second.active.is_set())
    minted += [await asyncio.to_thread(replicas.mint) for _ in range(2)]
    await wait_until(lambda: len(replicas.findings) == 5)
    assert [f.block_number for f in replicas.findings] == minted  # each mint's block once, in order
    numbers = [n for n, _h, _o in await second.follower.checkpoints.processed(31337)]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))  # no block skipped between the replicas
    assert second.lease is not None and first.lease is not None
    assert second.follower.fence == 2  # the second holding of detect:31337
    stop_second.set()
    await second_task


async def test_a_replica_whose_lease_ran_out_publishes_nothing_more_and_stops(replicas: Replicas) -> None:
    first, second = replicas.watchers
    stop = asyncio.Event()
    first_task, second_task = run(first, stop), None
    await wait_until(lambda: first.follower.last is not None)  # it starts at the head it first sees
    second_task = run(second, stop)
    await asyncio.to_thread(replicas.mint)
    await wait_until(lambda: len(replicas.findings) == 1)
    replicas.clock.jump(60)  # the first replica's holding expires on the backend: the second takes it
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(first_task, 30)
    assert not first.active.is_set()
    await wait_until(lambda: second.active.is_set())
    handled = first.engine.blocks
    number = await asyncio.to_thread(replicas.mint)
    await wait_until(lambda: len(replicas.findings) == 2)
    assert replicas.findings[-1].block_number == number
    assert first.engine.blocks == handled  # the first one follows no more
    assert await second.follower.checkpoints.fence(31337) == 2
    stop.set()
    await second_task


async def test_replicas_started_at_once_elect_one_follower(replicas: Replicas) -> None:
    stop = asyncio.Event()
    tasks = [run(watcher, stop) for watcher in replicas.watchers]
    await wait_until(lambda: any(w.follower.last is not None for w in replicas.watchers))
    leader = next(w for w in replicas.watchers if w.active.is_set())
    other = next(w for w in replicas.watchers if w is not leader)
    minted = [await asyncio.to_thread(replicas.mint) for _ in range(3)]
    await wait_until(lambda: len(replicas.findings) == 3)
    assert [f.block_number for f in replicas.findings] == minted
    assert not other.active.is_set() and other.engine.blocks == 0
    stop.set()
    await asyncio.gather(*tasks)
