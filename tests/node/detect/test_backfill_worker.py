"""The backfill worker process (``detect/offload.py``) on the reference venue with an exploit in the
range: the same findings, in the same order, as in one process; a worker killed with SIGKILL in the
middle of the backfill is replaced and its windows are redone, nothing lost and nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.detect.offload import BackfillWorker
from breakglass.detect.service import Watcher, build_watcher
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import Finding
from breakglass.store.db import Base

pytestmark = [pytest.mark.node, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "venue.yaml"
HORIZON = 8
"""state horizon of these engines: all but the last few blocks are beyond it, as deep in a long backfill"""


class Findings:
    """A bus that keeps the findings in publication order."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self.killed: int | None = None
        """the worker process a test killed"""

    async def publish(self, topic: str, message: Any) -> None:
        if topic == Topics.FINDINGS:
            self.items.append(message)

    def subscribe(self, topic: str, durable: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def seen(findings: list[Finding]) -> list[tuple[Any, ...]]:
    """A finding as the stages after detection know it (its observation time aside)."""
    return [
        (f.fingerprint, f.monitor_id, f.block_number, f.tx_hash, f.log_index, f.title, f.severity, f.evidence)
        for f in findings
    ]


def kill_in_flight(worker: BackfillWorker, bus: Findings) -> None:
    """SIGKILL the worker right after the backfill's second window was handed to it (the first one's
    findings may be published by then, later windows are on their way to it)."""
    pid = worker.pid
    assert pid is not None
    bus.killed = pid
    judge = worker.judge
    windows = 0

    async def judge_then_kill(*args: Any) -> Any:
        nonlocal windows
        windows += 1
        judging = asyncio.ensure_future(judge(*args))
        if windows == 2:
            await asyncio.sleep(0)  # the window is submitted to the worker
            os.kill(pid, signal.SIGKILL)
        return await judging

    worker.judge = judge_then_kill  # type: ignore[method-assign]


async def backfill(
    node: Anvil, tmp_path: Path, name: str, first: int, *, worker: bool, kill: bool = False
) -> tuple[Watcher, Findings]:
    text = EXAMPLE.read_text(encoding="utf-8").replace("../.breakglass/devnet/manifest.json", "manifest.json")
    text = text.replace("\nchain:\n", f"\nchain:\n  backfill_worker: {str(worker).lower()}\n", 1)
    text += f"\nstore:\n  url: sqlite:///{tmp_path / (name + '.db')}\n"
    (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    bus = Findings()
    watcher = build_watcher(load_config(tmp_path / f"{name}.yaml", environ={}), bus)
    async with watcher.db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await watcher.start()
    watcher.engine.state_horizon = HORIZON
    watcher.follower.start_block = first
    watcher.follower.batch_blocks = 5  # many windows, several in flight at once
    assert (watcher.engine.worker is not None) == worker
    if watcher.engine.worker is not None:
        await watcher.engine.worker.start()
        if kill:
            kill_in_flight(watcher.engine.worker, bus)
    await watcher.follower.step()
    return watcher, bus


async def test_the_worker_finds_what_one_process_finds_and_survives_being_killed(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    from breakglass.drills.scenarios import SCENARIOS, play

    scenario = SCENARIOS["admin-takeover"]
    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
    deployer.manifest(anvil.url).write(tmp_path / "manifest.json")
    first = deployer.w3.eth.block_number + 1
    result = play(scenario, venue, build)
    assert result.fraction > 0.5  # the attack worked: there is something to find
    anvil.mine(40)  # and quiet blocks after it, as a devnet makes
    last = deployer.w3.eth.block_number

    here, expected = await backfill(anvil, tmp_path, "here", first, worker=False)
    await here.close()
    monitors = {f.monitor_id for f in expected.items}
    stateless = {d.monitor_id for d in here.engine.detectors if getattr(d, "stateless", False)}
    # stateful monitors here, stateless ones in the worker: both kinds found something in the exploit
    assert {"attack-setup", "governance"} <= monitors and monitors & stateless, (monitors, stateless)

    there, found = await backfill(anvil, tmp_path, "there", first, worker=True)
    worker = there.engine.worker
    assert worker is not None and worker.windows > 0 and worker.restarts == 0
    assert seen(found.items) == seen(expected.items)
    assert there.follower.last is not None and there.follower.last.number == last
    assert there.engine.errors == here.engine.errors == 0
    await there.close()

    killed, survived = await backfill(anvil, tmp_path, "killed", first, worker=True, kill=True)
    worker = killed.engine.worker
    assert worker is not None and worker.restarts == 1
    assert seen(survived.items) == seen(expected.items)  # the dead worker's windows redone, once each
    assert killed.follower.last is not None and killed.follower.last.number == last
    await worker.start()  # the replacement comes up
    assert worker.ready and worker.pid != survived.killed
    judged = worker.windows
    anvil.mine(20)  # and takes the next backfill's windows beyond the horizon
    await killed.follower.step()
    assert worker.windows > judged and worker.restarts == 1
    assert killed.follower.last is not None and killed.follower.last.number == last + 20
    await killed.close()
    assert not worker.ready
