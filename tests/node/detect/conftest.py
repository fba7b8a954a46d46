"""A small protocol on a real anvil for the detector tests: token, vault with roles, mixer (the records
and helpers the tests import are in detect_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from detect_support import Probe, RecordingBus, Watch, write_config  # type: ignore[import-not-found]
from web3 import Web3

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.store.db import Base, make_engine, make_sessionmaker


@pytest.fixture(scope="session")
def mocks() -> Build:
    return compile_contracts(["contracts/mocks"])


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
