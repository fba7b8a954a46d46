"""examples/venue.yaml against the real reference venue: an exploit scenario raises high findings,
benign traffic raises none at high or critical (a short run; the 2,000-block run is
``python -m benchmarks.detection_venue``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.detect.service import Watcher, build_watcher
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import Finding, Severity
from breakglass.store.db import Base

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "venue.yaml"


class Findings:
    def __init__(self) -> None:
        self.items: list[Finding] = []

    async def publish(self, topic: str, message: Any) -> None:
        if topic == Topics.FINDINGS:
            self.items.append(message)

    def subscribe(self, topic: str, durable: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def serious(self) -> list[Finding]:
        return [f for f in self.items if f.severity >= Severity.HIGH]


async def watch_venue(node: Anvil, deployer: Deployer, tmp_path: Path) -> tuple[Watcher, Findings]:
    deployer.manifest(node.url).write(tmp_path / "manifest.json")
    text = EXAMPLE.read_text(encoding="utf-8").replace("../.breakglass/devnet/manifest.json", "manifest.json")
    text += f"\nstore:\n  url: sqlite:///{tmp_path / 'store.db'}\n"
    (tmp_path / "venue.yaml").write_text(text, encoding="utf-8")
    bus = Findings()
    watcher = build_watcher(load_config(tmp_path / "venue.yaml", environ={}), bus)
    async with watcher.db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await watcher.start()
    watcher.follower.start_block = deployer.w3.eth.block_number + 1
    return watcher, bus


async def test_the_admin_takeover_scenario_raises_governance_and_drain_findings(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    from breakglass.drills.scenarios import SCENARIOS, play

    scenario = SCENARIOS["admin-takeover"]
    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
    watcher, bus = await watch_venue(anvil, deployer, tmp_path)
    result = play(scenario, venue, build)
    await watcher.follower.step()
    await watcher.close()
    assert result.fraction > 0.5  # the attack worked: there was something to detect
    serious = {f.monitor_id for f in bus.serious()}
    assert {"attack-setup", "governance", "vault-drain"} <= serious
    setup = [f for f in bus.serious() if f.monitor_id == "attack-setup"]
    assert min(f.block_number for f in setup) < result.first_strike_block  # lead time before the strike
    assert watcher.engine.errors == 0


async def test_benign_traffic_raises_nothing_high_or_critical(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    from breakglass.drills.benign import BenignConfig, BenignTraffic

    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    venue = deploy_venue(deployer, VenueOptions())
    traffic = BenignTraffic(venue, BenignConfig(seed=3))
    traffic.fund()
    watcher, bus = await watch_venue(anvil, deployer, tmp_path)
    report = traffic.run(60)
    await watcher.follower.step()
    await watcher.close()
    assert report.transactions > 100 and watcher.follower.blocks_processed >= 60
    assert bus.serious() == [], [(f.monitor_id, f.title) for f in bus.serious()]
    assert watcher.engine.errors == 0
