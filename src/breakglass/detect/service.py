"""The watch service: RPC client + follower + detection engine for one configuration, wired once.

``build_watcher(config, bus)`` does no I/O; ``await watcher.run(stop)`` resolves the chain id, follows
the chain and publishes findings; ``await watcher.test_block(n)`` evaluates the monitors against one
historical block without publishing (``breakglass test-monitor``).

Several replicas (``ha.lease`` configured): one follows a chain at a time, the holder of the lease
``detect:<chain id>`` (``breakglass.ha``); the others stand by. The one that takes the lease claims the
chain's checkpoint with the lease's fencing token (``CheckpointStore.claim``) and only then reads it
and the detectors' saved state, so it resumes at the block after the last one checkpointed, by
whichever replica wrote it: no block is skipped, and the blocks the dead one handled but had not
checkpointed are handled again (their findings carry the same fingerprints: the alert stage counts
them, it does not raise them twice). A replica that loses the lease stops at once: it publishes
nothing more (``_WhileHeld``), its checkpoint writes carry the old token and are refused, and its run
ends with ``LeaseLost`` (its detectors' memory is no longer the checkpoint's: the process stops and
its supervisor starts it again, as a standby). The mempool and attack-contract simulation wait for
``Watcher.active`` (they judge against the detectors the follower keeps current).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from breakglass.bus import Bus
from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower, fetch_blocks
from breakglass.chain.rpc import RpcClient
from breakglass.config import LoadedConfig
from breakglass.detect.build import BuiltDetectors, build_detectors, contracts_of
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.reads import RpcBatchExecutor
from breakglass.domain import Finding
from breakglass.errors import BreakglassError, ConfigError, ConfigIssue
from breakglass.ha import Lease, LeaseBackend, build_lease
from breakglass.logs import get_logger
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.health import StoreHealth, until_stored

__all__ = ["LeaseLost", "Watcher", "build_watcher"]

log = get_logger(__name__)


class LeaseLost(BreakglassError):
    """This replica no longer holds the lease of the duty it was doing (another may hold it now)."""


class _WhileHeld:
    """The bus as the detection engine (and the simulations riding on it) see it in a replica:
    publishes only while the watcher holds its lease (``LeaseLost`` otherwise: the block in hand is
    left for the new holder). A publish that passed the check just before the lease ran out is
    harmless: the new holder publishes the same finding (same fingerprint), counted on one alert."""

    def __init__(self, bus: Bus, lease: Callable[[], Lease | None]) -> None:
        self.inner = bus
        self._lease = lease

    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        lease = self._lease()
        if lease is None or not lease.is_held():
            raise LeaseLost(f"{lease.name if lease else 'detect'}: not held; not publishing on {topic}")
        await self.inner.publish(topic, message, dedup=dedup)

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        return self.inner.subscribe(topic, durable)

    def settled(self, topic: str) -> Awaitable[None]:
        return self.inner.settled(topic)

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        return self.inner.listen(topic)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Watcher:
    config: LoadedConfig
    rpc: RpcClient
    built: BuiltDetectors
    engine: DetectionEngine
    follower: Follower
    db: AsyncEngine
    bus: Bus | None = None
    """What the engine (and the simulations built on this watcher) publish through: the pipeline's
    bus, behind the lease check when replicas share the chain."""
    lease_backend: LeaseBackend | None = None
    """Where the ``detect:<chain id>`` lease lives; None: this process is the chain's only follower."""
    active: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while this process follows the chain (at once without a lease; once it holds it with)."""
    owns_lease_backend: bool = True
    """Whether ``close()`` closes ``lease_backend`` (False: the process shares it and closes it)."""
    lease: Lease | None = None
    standby_seconds: float | None = None
    """How long the last standby lasted before this replica took the lease (for logs and benchmarks)."""

    async def _chain_id(self) -> int:
        configured = self.config.chain_id
        answered = int(await self.rpc.call("eth_chainId"), 16)
        if configured is not None and configured != answered:
            raise ConfigError(
                [
                    ConfigIssue(
                        str(self.config.path),
                        None,
                        "chain.chain_id",
                        f"{configured}, but the node answers chain id {answered}",
                    )
                ]
            )
        return answered

    async def start(self) -> None:
        chain_id = await self._chain_id()
        self.engine.chain_id = chain_id
        self.follower.chain_id = chain_id

    async def run(self, stop: asyncio.Event | None = None, *, until: int | None = None) -> None:
        await self.start()
        if self.lease_backend is None:
            self.active.set()
            await self.follower.run(stop, until=until)
            return
        await self._run_leased(stop or asyncio.Event(), until)

    async def _run_leased(self, stop: asyncio.Event, until: int | None) -> None:
        """Stand by until this replica holds ``detect:<chain id>``, then follow while it does."""
        assert self.lease_backend is not None
        chain_id = self.follower.chain_id
        lease = self.lease = build_lease(f"detect:{chain_id}", self.config.settings.ha, self.lease_backend)
        done = asyncio.Event()  # the lease's loop ends (releasing it) once following has ended
        keeper = asyncio.create_task(lease.run(done), name=f"lease detect:{chain_id}")
        waited = time.monotonic()
        log.info("detect standing by", chain=chain_id, holder=lease.holder_id)
        halt = asyncio.Event()
        watch: asyncio.Task[None] | None = None
        try:
            while not lease.is_held():
                if keeper.done():
                    keeper.result()  # the lease's loop failed: say why
                if stop.is_set() or keeper.done():
                    return
                await _first(stop.wait(), lease.wait_changed(1.0))
            token = lease.token
            assert token is not None
            # the fence first: a write the previous holder still has in flight lands before this
            # claim (and is read below) or is refused after it
            follower = self.follower
            await until_stored(
                follower.health, "checkpoint.claim", lambda: follower.checkpoints.claim(chain_id, token)
            )
            self.follower.fence = token
            self.standby_seconds = time.monotonic() - waited
            log.info("detect active", chain=chain_id, holder=lease.holder_id, token=token,
                     standby_s=round(self.standby_seconds, 3))  # fmt: skip
            self.active.set()

            async def watch_lease() -> None:
                while lease.is_held() and not stop.is_set():
                    await _first(stop.wait(), lease.wait_changed(max(lease.remaining(), 0.01)))
                halt.set()

            watch = asyncio.create_task(watch_lease())
            await self.follower.run(halt, until=until)
            if not stop.is_set() and not lease.is_held():
                raise LeaseLost(f"detect:{chain_id}: lease lost (token {token}); stopped following")
        finally:
            self.active.clear()
            if watch is not None:
                watch.cancel()
            done.set()
            with contextlib.suppress(asyncio.CancelledError, BreakglassError):
                await keeper

    def publisher(self, bus: Bus | None) -> Bus | None:
        """``bus`` as what rides on this watcher (mempool, attack simulation) publishes through: behind
        its lease when replicas share the chain (nothing is published while standing by)."""
        if bus is None or self.lease_backend is None:
            return bus
        return _WhileHeld(bus, lambda: self.lease)

    async def wait_active(self, stop: asyncio.Event | None) -> bool:
        """Until this process follows the chain (True) or ``stop`` is set first (False)."""
        if stop is None:
            await self.active.wait()
            return True
        await _first(stop.wait(), self.active.wait())
        return self.active.is_set() and not stop.is_set()

    async def test_block(self, number: int) -> list[Finding]:
        await self.start()
        [block] = await fetch_blocks(self.rpc, [number])
        return await self.engine.evaluate(block)

    async def close(self) -> None:
        await self.engine.close()
        await self.rpc.close()
        await self.db.dispose()
        if self.lease_backend is not None and self.owns_lease_backend:
            await self.lease_backend.close()


async def _first(*waits: Awaitable[Any]) -> None:
    """Until the first of ``waits`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def build_watcher(
    config: LoadedConfig,
    bus: Bus | None,
    *,
    start_block: int | None = None,
    only: Sequence[str] | None = None,
    progress: bool = False,
    health: StoreHealth | None = None,
    lease_backend: LeaseBackend | None = None,
) -> Watcher:
    """Everything between the chain and the findings topic, for ``config``. No I/O. ``health``: the
    process's store health (``Store.health``), which the follower reports its checkpoint writes to.
    With ``ha.lease`` configured (and a bus: a watcher that publishes), or a ``lease_backend`` given
    (one the process shares between its leases), the chain is followed only while this process holds
    its lease (see the module docstring)."""
    chain = config.settings.chain
    urls = config.rpc_urls()
    if not urls:
        raise ConfigError(
            [ConfigIssue(str(config.path), None, "chain.rpc", "no RPC endpoint and no manifest")]
        )
    rpc = RpcClient.from_urls(urls, timeout=chain.request_timeout)
    chain_id = config.chain_id or 0
    backend = lease_backend
    if backend is None and bus is not None and config.settings.ha.lease != "none":
        from breakglass.ha import lease_backend as configured

        backend = configured(config.settings.ha)
    built = build_detectors(config, chain_id=chain_id, only=only)
    engine = DetectionEngine(
        built.detectors,
        chain_id=chain_id,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        bus=bus,
        want_code=built.want_code,
        multicall=chain.multicall,
        backfill_worker=chain.backfill_worker,
    )
    db = make_engine(config.settings.store.url)
    follower = Follower(
        rpc,
        CheckpointStore(make_sessionmaker(db)),
        engine,
        chain_id=chain_id,
        confirmations=chain.confirmations,
        poll_interval=chain.poll_interval,
        start_block=start_block,
        ws_url=chain.ws.get_secret_value() if chain.ws else None,
        progress=progress,
        health=health,
    )
    watcher = Watcher(
        config, rpc, built, engine, follower, db, bus, backend, owns_lease_backend=lease_backend is None
    )
    watcher.bus = engine.bus = watcher.publisher(bus)  # findings only while holding the chain's lease
    return watcher
