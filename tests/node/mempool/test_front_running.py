"""Pre-execution containment on the reference venue: each exploit's strike, broadcast to a public
fee-ordered mempool, is simulated before inclusion, and the pause outbids it into the same block ahead
of it; the scenario's own loss measurement reads zero. With automine (private order flow: no window)
the block path still catches the strike."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mempool_defense import Defense, contained, defended_config, guardian_txs, play_strike_in_public_mempool
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import FindingStage, Severity
from breakglass.drills.scenarios import SCENARIOS, Phase, ScenarioRun, play

pytestmark = [pytest.mark.node, pytest.mark.slow]

PUBLIC = [
    "forwarder-oracle",
    "spot-oracle-pump",
    "reentrant-aum",
    "admin-takeover",
    "donation-insolvency",
    "repeated-drain",
    "slow-squeeze",
]


@pytest.mark.parametrize("name", PUBLIC)
async def test_a_pending_exploit_is_front_run_by_the_pause_and_loses_nothing(
    name: str, build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SCENARIOS[name]
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
        defense = await Defense.start(defended_config(tmp_path, node, deployer), venue, monkeypatch)
        try:
            run = ScenarioRun(scenario, venue, build)
            result = await asyncio.to_thread(play_strike_in_public_mempool, run, node)
        finally:
            await defense.close()
        strike = {s.tx_hash: s for s in result.steps if s.phase is Phase.STRIKE and s.tx_hash}
        # critical is what the playbooks contain on (a high governance finding on the role grant only pages)
        flagged = [
            f
            for f in defense.serious(FindingStage.PENDING)
            if f.tx_hash in strike and f.severity is Severity.CRITICAL
        ]
        assert flagged, (result.to_json(), [(f.monitor_id, f.stage, f.tx_hash) for f in defense.findings])
        assert all(f.evidence["pending_fees"]["max_priority_fee_per_gas"] for f in flagged)
        first = min((strike[f.tx_hash] for f in flagged), key=lambda s: s.block or 0)  # type: ignore[index]
        assert first.block is not None and first.tx_hash is not None
        pauses = guardian_txs(w3, venue.key("guardian").address, first.block, first.block)
        receipt = w3.eth.get_transaction_receipt(first.tx_hash)  # type: ignore[arg-type]
        assert pauses and min(i for _b, i, _h in pauses) < receipt["transactionIndex"]  # same block, ahead
    assert result.loss <= 0, result.to_json()
    monitors = sorted({f.monitor_id for f in flagged if f.tx_hash == first.tx_hash})
    where = f"pause at index {min(pauses)[1]}, it at {receipt['transactionIndex']} in block {first.block}"
    print(f"{name}: '{first.label}' flagged pending by {monitors}; {where}; loss {result.loss}")
    assert first.tx_hash in defense.verdicts and defense.verdicts[first.tx_hash].findings


async def test_with_automine_there_is_no_window_and_the_block_path_catches_the_strike(
    build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SCENARIOS["forwarder-oracle"]
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
        defense = await Defense.start(defended_config(tmp_path, node, deployer), venue, monkeypatch)
        try:
            result = await asyncio.to_thread(play, scenario, venue, build)
            async with asyncio.timeout(30):  # the follower catches up; the block finding contains the venue
                while not any(f.monitor_id == "oracle-deviation-eth" for f in defense.findings):
                    await asyncio.sleep(0.02)
                while not await asyncio.to_thread(contained, venue):
                    await asyncio.sleep(0.02)
        finally:
            await defense.close()
        assert result.first_strike_block is not None
        head = w3.eth.block_number
        pauses = guardian_txs(w3, venue.key("guardian").address, result.first_strike_block, head)
    # automine: each strike transaction was mined as it was sent, so the pause could only follow it
    assert pauses and min(b for b, _i, _h in pauses) > result.first_strike_block
    block_path = [
        f for f in defense.serious(FindingStage.BLOCK) if f.block_number >= result.first_strike_block
    ]
    setup = [f for f in defense.serious(FindingStage.BLOCK) if f.monitor_id == "attack-setup"]
    assert min(f.block_number for f in setup) < result.first_strike_block  # set-up signals came first
    assert {"oracle-deviation-eth", "price-push-by-stranger"} <= {f.monitor_id for f in block_path}
    # A pending finding on a strike transaction may still appear: anvil announces a transaction to
    # newPendingTransactions before it mines it, and the watcher can win that race under load. It
    # comes too late to act on, which the pause's block above shows.
