"""Benign traffic through a public mempool: every pending transaction that can touch the venue is
simulated, and nothing is flagged high or critical before inclusion, so no pre-execution action is taken.

The generator's own pace (~0.16 s a block) sets this test's length, so ``make test`` plays 200 blocks;
the issue's 2,000-block run is ``BREAKGLASS_BENIGN_BLOCKS=2000 pytest tests/node/mempool/test_benign.py``
(passed in 582 s on 2 cores, docs/mempool.md)."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from mempool_defense import Defense, defended_config, guardian_txs, wait_until
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import FindingStage
from breakglass.drills.benign import BenignConfig, BenignTraffic
from breakglass.simulate import MempoolService

pytestmark = [pytest.mark.node, pytest.mark.slow]

BLOCKS = int(os.environ.get("BREAKGLASS_BENIGN_BLOCKS", "200"))


class JudgedTraffic(BenignTraffic):
    """Mines each block only once the defender has judged every transaction waiting for it, so each
    one is simulated while still pending (as a block interval would allow)."""

    def __init__(self, *args: object, node: Anvil, judged: Callable[[str], bool], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.node = node
        self.judged = judged

    def _mine(self) -> None:
        content = self.node.rpc("txpool_content")
        waiting = [tx["hash"].lower() for by_nonce in content["pending"].values() for tx in by_nonce.values()]
        wait_until(lambda: all(self.judged(h) for h in waiting), timeout=30)
        super()._mine()


@pytest.mark.timeout(1200)
async def test_benign_traffic_gets_no_pre_execution_action(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions())
        defense = await Defense.start(defended_config(tmp_path, node, deployer), venue, monkeypatch)
        mempool = defense.app.components.mempool
        assert isinstance(mempool, MempoolService)
        traffic = JudgedTraffic(venue, BenignConfig(), node=node, judged=lambda h: h in defense.verdicts)
        try:
            await asyncio.to_thread(traffic.fund)
            first = w3.eth.block_number + 1
            report = await asyncio.to_thread(traffic.run, BLOCKS)
        finally:
            await defense.close()
        stats = mempool.simulator.stats
        assert report.transactions > 5 * BLOCKS // 2 and report.last_block - report.first_block + 1 >= BLOCKS
        assert stats.simulated >= 0.9 * report.transactions  # judged while pending, not after inclusion
        assert stats.errors == 0
        pending = defense.serious(FindingStage.PENDING)
        assert pending == [], [(f.monitor_id, f.title, f.tx_hash) for f in pending]
        assert guardian_txs(w3, venue.key("guardian").address, first, w3.eth.block_number) == []
        print(f"benign: {BLOCKS} blocks, {report.transactions} txs, {stats.simulated} simulated, "
              f"{stats.skipped} skipped, flagged at any severity: {stats.flagged}")  # fmt: skip
        for stage in FindingStage:
            seen = Counter(
                (f.monitor_id, f.severity.name.lower(), f.title[:70])
                for f in defense.findings
                if f.stage is stage
            )
            print(f"{stage.value} findings:", sorted(seen.items()))
