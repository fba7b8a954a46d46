"""Watching the reference venue from block 0: its deployment (constructors, the deployer's set-up up to
the manifest's deployment block) is no governance finding; a later grant by the same key is."""

from __future__ import annotations

from pathlib import Path

import pytest
from detect_support import RecordingBus, write_config  # type: ignore[import-not-found]
from web3 import Web3

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.detect.governance import GovernanceDetector
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import Finding
from breakglass.store.db import Base, make_engine, make_sessionmaker

pytestmark = [pytest.mark.node, pytest.mark.slow]

GOVERNANCE = """\
  - id: governance
    kind: governance
    contracts: [guardian, oracle, vault, insurance, market_eth, market_btc, market_thin, timelock]
    allow_contracts: [timelock]
    parameter_events:
      [MaxLeverageSet, OpenInterestCapSet, SourceSet, FeesSet, PushTtlSet, PauseWindowSet,
       InsuranceWithdrawn, Allocated, Deallocated]
"""


async def test_a_venue_watched_from_block_0_raises_nothing_for_its_deployment_but_a_later_grant(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = Deployer(w3, build)
    venue = deploy_venue(deployer, VenueOptions(exposed_admin=True))  # the deployer key keeps admin
    manifest = deployer.manifest(anvil.url)
    manifest.write(tmp_path / "manifest.json")
    config = write_config(tmp_path, GOVERNANCE)
    db = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    rpc = RpcClient.from_urls([anvil.url])
    bus = RecordingBus()
    built = build_detectors(config, chain_id=31337)
    engine = DetectionEngine(
        built.detectors,
        chain_id=31337,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        bus=bus,
    )
    follower = Follower(rpc, CheckpointStore(make_sessionmaker(db)), engine, chain_id=31337, start_block=0)
    try:
        await follower.step()
        [governance] = [d for d in engine.detectors if isinstance(d, GovernanceDetector)]
        assert manifest.deployment_block == w3.eth.block_number
        assert bus.published.get("findings", []) == []
        # roles granted in constructors and by the deployer's set-up, sources, caps, the hand-over
        assert governance.deployment_changes >= 20

        keeper = Web3.keccak(text="KEEPER_ROLE")
        stranger = w3.eth.accounts[9]
        tx = venue.guard.functions.grantRole(keeper, stranger).transact({"from": manifest.deployer})
        w3.eth.wait_for_transaction_receipt(tx)
        await follower.step()
        found: list[Finding] = bus.published.get("findings", [])
        assert [(f.evidence["event"], f.evidence["actor"]) for f in found] == [
            ("RoleGranted", str(manifest.deployer).lower())
        ]
    finally:
        await rpc.close()
        await db.dispose()
