"""``build_mempool(config, watcher, bus)``: the mempool watcher and the simulator for one configuration;
``build_attack_simulation(config, watcher, bus)``: the attack-contract simulation (``attack.py``).

Both share the block path's RPC client and detector instances (flows read their real windows), so they
are built from the ``detect.service.Watcher`` that ``build_app`` made. No I/O until ``run()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

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

__all__ = ["AttackSimulationService", "MempoolService", "build_attack_simulation", "build_mempool"]


@dataclass
class MempoolService:
    watcher: Watcher
    mempool: MempoolWatcher
    simulator: PendingSimulator

    async def start(self) -> None:
        """Resolve the chain id (shared with the block path) and the current head."""
        if not self.watcher.engine.chain_id:
            await self.watcher.start()
        self.simulator.judge.chain_id = self.watcher.engine.chain_id
        self.simulator.new_head(int(await self.watcher.rpc.call("eth_blockNumber"), 16))
        if self.simulator.new_head not in self.watcher.follower.head_listeners:
            # the follower's heads (pushed by its subscription) keep the caches' lifetime
            self.watcher.follower.head_listeners.append(self.simulator.new_head)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Watch and judge until ``stop`` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        await self.start()
        tasks = [asyncio.create_task(self.mempool.run()), asyncio.create_task(self.simulator.run(stop))]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ChainError):
                    await task


def build_mempool(config: LoadedConfig, watcher: Watcher, bus: Bus | None) -> MempoolService:
    settings = config.settings.mempool
    engine = watcher.engine
    ignore: list[str] = []
    issues: list[ConfigIssue] = []
    for i, item in enumerate(settings.ignore):
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
    simulator = PendingSimulator(
        watcher.rpc,
        judge,
        relevance,
        bus=bus,
        max_in_flight=settings.max_in_flight,
        head_poll_interval=settings.head_poll_interval,
        batcher=batcher,
    )
    ws = settings.ws or config.settings.chain.ws
    mempool = MempoolWatcher(
        watcher.rpc,
        simulator.handle,
        ws_url=ws.get_secret_value() if ws else None,
        poll_interval=settings.poll_interval,
    )
    return MempoolService(watcher, mempool, simulator)


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
        """Probe the contracts of the blocks the follower hands over until ``stop`` is set."""
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
        bus=bus,
        tainted=tainted_by(watcher.built.detectors),
        funds=funds,
        follow_ups=FollowUps(follow_ups) if follow_ups else None,
    )
    engine.block_listeners.append(simulator.on_block)
    return AttackSimulationService(watcher, simulator)
