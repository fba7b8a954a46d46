"""A small protocol on a real anvil for the detector tests: token, vault with roles, mixer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.config import LoadedConfig, load_config
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.domain import Finding
from breakglass.store.db import Base, make_engine, make_sessionmaker

USD = 10**6


@pytest.fixture(scope="session")
def mocks() -> Build:
    return compile_contracts(["contracts/mocks"])


@dataclass
class Probe:
    node: Anvil
    w3: Web3
    token: Contract
    vault: Contract
    mixer: Contract
    admin: str
    users: list[str]
    manifest: Path
    build: Build

    def send(self, fn: Any, sender: str, **extra: Any) -> dict[str, Any]:
        tx_hash = fn.transact({"from": sender, **extra})
        return dict(self.w3.eth.wait_for_transaction_receipt(tx_hash))

    def deposit(self, user: str, amount: int) -> None:
        self.send(self.token.functions.mint(user, amount), user)
        self.send(self.token.functions.approve(self.vault.address, amount), user)
        self.send(self.vault.functions.deposit(amount), user)


@pytest.fixture
def probe(anvil: Anvil, mocks: Build, tmp_path: Path) -> Probe:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, mocks)
    admin = w3.eth.accounts[0]
    token = deployer.deploy("usd", "MockERC20", "Test USD", "tUSD", 6)
    vault = deployer.deploy("vault", "ProbeVault", token.address, admin)
    mixer = deployer.deploy("mixer", "ProbeMixer")
    manifest = tmp_path / "manifest.json"
    deployer.manifest(anvil.url).write(manifest)
    return Probe(anvil, w3, token, vault, mixer, admin, list(w3.eth.accounts[1:]), manifest, mocks)


def write_config(tmp_path: Path, monitors: str, *, extra: str = "") -> LoadedConfig:
    path = tmp_path / "breakglass.yaml"
    path.write_text(
        f"protocol: probe\ndeployment: manifest.json\n{extra}monitors:\n{monitors}", encoding="utf-8"
    )
    return load_config(path, environ={})


class RecordingBus:
    """A Bus that keeps what is published, by topic (tests read it synchronously)."""

    def __init__(self) -> None:
        self.published: dict[str, list[Any]] = {}

    async def publish(self, topic: str, message: Any) -> None:
        self.published.setdefault(topic, []).append(message)

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


@dataclass
class Watch:
    """Engine + follower over a probe deployment; ``await watch.catch_up()`` processes new blocks."""

    engine: DetectionEngine
    follower: Follower
    bus: RecordingBus
    rpc: RpcClient
    taken: int = 0
    closers: list[Any] = field(default_factory=list)

    async def catch_up(self) -> list[Finding]:
        await self.follower.step()
        findings: list[Finding] = self.bus.published.get("findings", [])
        new, self.taken = findings[self.taken :], len(findings)
        return new


@pytest.fixture
async def watch_factory(probe: Probe, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Watch] = []
    db = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)

    async def make(monitors: str, *, extra: str = "") -> Watch:
        config = write_config(tmp_path, monitors, extra=extra)
        rpc = RpcClient.from_urls([probe.node.url])
        built = build_detectors(config, chain_id=31337)
        bus = RecordingBus()
        engine = DetectionEngine(
            built.detectors,
            chain_id=31337,
            contracts=contracts_of(config),
            executor=RpcBatchExecutor(rpc),
            bus=bus,
            want_code=built.want_code,
        )
        head = probe.w3.eth.block_number
        follower = Follower(
            rpc, CheckpointStore(make_sessionmaker(db)), engine, chain_id=31337, start_block=head + 1
        )
        w = Watch(engine, follower, bus, rpc)
        made.append(w)
        return w

    yield make
    for w in made:
        await w.rpc.close()
    await db.dispose()
