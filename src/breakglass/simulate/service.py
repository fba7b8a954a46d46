"""``build_mempool(config, watcher, bus)``: the mempool watcher and the simulator for one configuration;
``build_simulation_worker(config, watcher, bus, queue)``: a ``simulate`` role's worker (``worker.py``);
``build_attack_simulation(config, watcher, bus)``: the attack-contract simulation (``attack.py``).

Both share the block path's RPC client and detector instances (flows read their real windows), so they
are built from the ``detect.service.Watcher`` that ``build_app`` made. No I/O until ``run()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from breakglass.bus import Bus
from breakglass.chain.mempool import MempoolWatcher
from breakglass.config import LoadedConfig
from breakglass.detect.service import Watcher
from breakglass.errors import ChainError, ConfigError, ConfigIssue
from breakglass.simulate.attack import AttackSimulator, tainted_by
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.followups import FollowUps, compile_follow_ups
from breakglass.simulate.judge import Judge
from breakglass.simulate.relevance import RelevanceFilter
from breakglass.simulate.simulator import PendingSimulator
from breakglass.simulate.worker import SimulationWorker, submitter

if TYPE_CHECKING:  # nats-py is only needed when a bus across machines is configured
    from breakglass.bus.workqueue import JetStreamWorkQueue

__all__ = [
    "AttackSimulationService",
    "MempoolService",
    "build_attack_simulation",
    "build_mempool",
    "build_simulation_worker",
]


@dataclass
class MempoolService:
    watcher: Watcher
    mempool: MempoolWatcher
    simulator: PendingSimulator
    queue: JetStreamWorkQueue | None = None
    """The simulate work queue the watcher submits to (a bus across machines); None: judged here."""
    worker: SimulationWorker | None = None
    """A worker of that queue in this process too (no roles chosen: every role here)."""

    async def start(self) -> None:
        """Resolve the chain id (shared with the block path), the current head, the work queue."""
        if not self.watcher.engine.chain_id:
            await self.watcher.start()
        self.simulator.judge.chain_id = self.watcher.engine.chain_id
        if self.queue is not None:
            await self.queue.open()
        self.simulator.new_head(int(await self.watcher.rpc.call("eth_blockNumber"), 16))
        if self.simulator.new_head not in self.watcher.follower.head_listeners:
            # the follower's heads (pushed by its subscription) keep the caches' lifetime
            self.watcher.follower.head_listeners.append(self.simulator.new_head)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Watch and judge (or submit) until ``stop`` is set (or cancelled). Judging here, only while
        this process follows the chain: a standby replica waits (``Watcher.active``). Submitting to the
        work queue, at once, whether it follows the chain or not (a ``simulate`` process builds its
        watcher without running it): every replica watching the mempool submits, the server queues
        each transaction once, and a mempool feed lost with one process is not lost to all."""
        stop = stop or asyncio.Event()
        tasks = [asyncio.create_task(self.worker.run(stop))] if self.worker is not None else []
        try:
            if self.queue is None and not await self.watcher.wait_active(stop):
                return
            await self.start()
            tasks += [asyncio.create_task(self.mempool.run()), asyncio.create_task(self.simulator.run(stop))]
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ChainError):
                    await task


def build_mempool(
    config: LoadedConfig,
    watcher: Watcher,
    bus: Bus | None,
    *,
    queue: JetStreamWorkQueue | None = None,
    worker: bool = False,
) -> MempoolService:
    """The watcher and its simulator; with ``queue``, new transactions are submitted to the simulate
    workers instead of judged here, and ``worker`` runs one of those workers in this process too."""
    settings = config.settings.mempool
    # judging here: only while following the chain; submitting: a worker publishes, whoever follows
    simulator = _simulator(config, watcher, watcher.publisher(bus) if queue is None else bus)
    if queue is not None:
        simulator.submit = submitter(queue, simulator)
    ws = settings.ws or config.settings.chain.ws
    mempool = MempoolWatcher(
        watcher.rpc,
        simulator.handle,
        ws_url=ws.get_secret_value() if ws else None,
        poll_interval=settings.poll_interval,
    )
    local = build_simulation_worker(config, watcher, bus, queue) if queue is not None and worker else None
    return MempoolService(watcher, mempool, simulator, queue, local)


def build_simulation_worker(
    config: LoadedConfig, watcher: Watcher, bus: Bus | None, queue: JetStreamWorkQueue
) -> SimulationWorker:
    """A ``simulate`` role's worker: ``mempool.max_in_flight`` items of ``queue`` at a time, judged by
    ``watcher``'s detectors (its follower need not run)."""
    simulator = _simulator(config, watcher, bus)
    return SimulationWorker(watcher, simulator, queue, concurrency=config.settings.mempool.max_in_flight)


def _simulator(config: LoadedConfig, watcher: Watcher, bus: Bus | None) -> PendingSimulator:
    settings = config.settings.mempool
    engine = watcher.engine
    ignore = _ignored(config, watcher)
    judge = _judge(watcher)
    batcher = RpcBatcher(watcher.rpc)

    async def has_code(address: str) -> bool:
        [code] = await batcher.batch([("eth_getCode", (address, "latest"))])
        if isinstance(code, BaseException):
            raise code
        return str(code) not in ("0x", "0x0", "")

    relevance = RelevanceFilter(
        engine.addresses.values(), has_code, ignore=ignore, simulate_creations=settings.simulate_creations
    )
    return PendingSimulator(
        watcher.rpc,
        judge,
        relevance,
        bus=bus,
        max_in_flight=settings.max_in_flight,
        head_poll_interval=settings.head_poll_interval,
        batcher=batcher,
    )


def _ignored(config: LoadedConfig, watcher: Watcher) -> list[str]:
    """``mempool.ignore`` as addresses; a name that is no contract is a configuration error."""
    engine = watcher.engine
    ignore: list[str] = []
    issues: list[ConfigIssue] = []
    for i, item in enumerate(config.settings.mempool.ignore):
        if item.startswith("0x") and len(item) == 42:
            ignore.append(item)
        elif item in engine.addresses:
            ignore.append(engine.addresses[item])
        else:
            known = ", ".join(sorted(engine.addresses))
            issues.append(
                ConfigIssue(
                    str(config.path), None, f"mempool.ignore[{i}]", f"{item!r} is no contract ({known})"
                )
            )
    if issues:
        raise ConfigError(issues)
    return ignore


def _judge(watcher: Watcher) -> Judge:
    """The block path's detectors as a judge of simulated post-states."""
    engine = watcher.engine
    return Judge(
        watcher.built.detectors,
        watcher.built.invariants,
        chain_id=engine.chain_id,
        abi=engine.abi,
        contracts=engine.addresses,
        reads=engine.calls,
    )


@dataclass
class AttackSimulationService:
    watcher: Watcher
    simulator: AttackSimulator

    async def start(self) -> None:
        """Resolve the chain id (shared with the block path)."""
        if not self.watcher.engine.chain_id:
            await self.watcher.start()
        self.simulator.judge.chain_id = self.watcher.engine.chain_id

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Probe the contracts of the blocks the follower hands over until ``stop`` is set (a standby
        replica waits until it follows the chain: ``Watcher.active``)."""
        if not await self.watcher.wait_active(stop):
            return
        await self.start()
        await self.simulator.run(stop)


def build_attack_simulation(
    config: LoadedConfig, watcher: Watcher, bus: Bus | None
) -> AttackSimulationService:
    """The attack-contract simulation, told every block near the head by the watcher's engine."""
    engine = watcher.engine
    settings = config.settings.attack_simulation
    funds: dict[str, int] = {}
    issues: list[ConfigIssue] = []
    for name, amount in settings.funds.items():
        if name in engine.addresses:
            funds[engine.addresses[name]] = amount
        else:
            known = ", ".join(sorted(engine.addresses))
            issues.append(
                ConfigIssue(
                    str(config.path),
                    None,
                    f"attack_simulation.funds.{name}",
                    f"{name!r} is no contract ({known})",
                )
            )
    contracts = {name: (record.address, record.abi) for name, record in config.contracts.items()}
    follow_ups, problems = compile_follow_ups(settings.follow_ups, contracts, config.issue)
    issues += problems
    if issues:
        raise ConfigError(issues)
    simulator = AttackSimulator(
        watcher.rpc,
        _judge(watcher),
        settings,
        protocol=engine.addresses,
        bus=watcher.publisher(bus),  # only while following the chain
        tainted=tainted_by(watcher.built.detectors),
        funds=funds,
        follow_ups=FollowUps(follow_ups) if follow_ups else None,
    )
    engine.early_listeners.append(simulator.on_fetched)
    engine.block_listeners.append(simulator.on_block)
    return AttackSimulationService(watcher, simulator)
