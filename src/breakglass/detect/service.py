"""The watch service: RPC client + follower + detection engine for one configuration, wired once.

``build_watcher(config, bus)`` does no I/O; ``await watcher.run(stop)`` resolves the chain id, follows
the chain and publishes findings; ``await watcher.test_block(n)`` evaluates the monitors against one
historical block without publishing (``breakglass test-monitor``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

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
from breakglass.errors import ConfigError, ConfigIssue
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.health import StoreHealth

__all__ = ["Watcher", "build_watcher"]


@dataclass
class Watcher:
    config: LoadedConfig
    rpc: RpcClient
    built: BuiltDetectors
    engine: DetectionEngine
    follower: Follower
    db: AsyncEngine

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
        await self.follower.run(stop, until=until)

    async def test_block(self, number: int) -> list[Finding]:
        await self.start()
        [block] = await fetch_blocks(self.rpc, [number])
        return await self.engine.evaluate(block)

    async def close(self) -> None:
        await self.rpc.close()
        await self.db.dispose()


def build_watcher(
    config: LoadedConfig,
    bus: Bus | None,
    *,
    start_block: int | None = None,
    only: Sequence[str] | None = None,
    progress: bool = False,
    health: StoreHealth | None = None,
) -> Watcher:
    """Everything between the chain and the findings topic, for ``config``. No I/O. ``health``: the
    process's store health (``Store.health``), which the follower reports its checkpoint writes to."""
    chain = config.settings.chain
    urls = config.rpc_urls()
    if not urls:
        raise ConfigError(
            [ConfigIssue(str(config.path), None, "chain.rpc", "no RPC endpoint and no manifest")]
        )
    rpc = RpcClient.from_urls(urls, timeout=chain.request_timeout)
    chain_id = config.chain_id or 0
    built = build_detectors(config, chain_id=chain_id, only=only)
    engine = DetectionEngine(
        built.detectors,
        chain_id=chain_id,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        bus=bus,
        want_code=built.want_code,
        multicall=chain.multicall,
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
    return Watcher(config, rpc, built, engine, follower, db)
