"""Event monitors judge the logs the node pushes, before the block is fetched, and a finding goes out
once whichever path saw it first; a log taken back by the node is retracted."""

from __future__ import annotations

from typing import Any

from test_abi_and_reads import CONTRACTS, TOKEN, TRANSFER, transfer_log  # type: ignore[import-not-found]
from test_engine import Balances, Bus, block  # type: ignore[import-not-found]

from breakglass.chain.checkpoint import Checkpoint
from breakglass.config.monitors import EventMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.filters import EventDetector
from breakglass.domain import Finding
from breakglass.messages.findings import Retraction


def monitor(monitor_id: str, where: str | None) -> EventDetector:
    cfg = EventMonitor(id=monitor_id, kind="event", contract="token", event="Transfer", where=where)
    return EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER))


def pushed(number: int, value: int, removed: bool = False) -> dict[str, Any]:
    """The log of ``block(number, value)`` as a node pushes it on a ``logs`` subscription."""
    log = transfer_log(value)
    return {
        "address": log.address,
        "topics": list(log.topics),
        "data": "0x" + log.data.hex(),
        "logIndex": hex(log.log_index),
        "transactionHash": log.tx_hash,
        "transactionIndex": hex(log.tx_index),
        "blockNumber": hex(number),
        "blockHash": block(number, value).hash,
        "removed": removed,
    }


def engine_with(bus: Bus) -> DetectionEngine:
    detectors = [
        monitor("by-args", "args.value > 10"),  # reads the log only: judged on the push
        monitor("by-sender", "tx.from == contracts.vault"),  # reads the transaction: waits for the block
    ]
    return DetectionEngine(detectors, chain_id=1, contracts=CONTRACTS, executor=Balances(0), bus=bus)


def findings(bus: Bus) -> list[tuple[str, int]]:
    return [(m.monitor_id, m.block_number) for t, m in bus.published if isinstance(m, Finding)]


async def test_a_log_only_monitor_reports_from_the_pushed_log_and_the_block_adds_only_the_rest() -> None:
    bus = Bus()
    engine = engine_with(bus)
    assert engine.log_addresses() == [TOKEN]
    await engine.on_pushed_log(pushed(2, 100))
    assert findings(bus) == [("by-args", 2)]  # before the block was fetched
    assert await engine.on_block(block(2, 100)) == 2  # both belong to the block's checkpoint
    assert findings(bus) == [("by-args", 2), ("by-sender", 2)]  # the pushed one is not published twice
    await engine.on_pushed_log(pushed(2, 100))  # a node repeating itself changes nothing
    assert len(findings(bus)) == 2


async def test_a_log_the_node_takes_back_retracts_what_it_raised() -> None:
    bus = Bus()
    engine = engine_with(bus)
    await engine.on_pushed_log(pushed(3, 100))
    await engine.on_pushed_log(pushed(3, 100, removed=True))
    [retraction] = [m for _t, m in bus.published if isinstance(m, Retraction)]
    [finding] = [m for _t, m in bus.published if isinstance(m, Finding)]
    assert (retraction.block_number, retraction.fingerprints) == (3, (finding.fingerprint,))


async def test_a_log_below_the_monitors_threshold_or_malformed_raises_nothing() -> None:
    bus = Bus()
    engine = engine_with(bus)
    await engine.on_pushed_log(pushed(4, 5))
    await engine.on_pushed_log({"address": TOKEN, "topics": "not a list"})
    assert findings(bus) == []
    assert engine.errors == 1  # the malformed one, counted and logged


async def test_a_block_canonical_again_after_a_reorg_raises_again_what_its_pushed_log_raised() -> None:
    # A flip-flop: the pushed log of block 2 raised F, a reorg orphaned block 2 (the node's removal
    # of the log never came: a subscription that reconnected), and the chain went back to it. The
    # block path skipped F as already published from the push: the breach was never raised again.
    bus = Bus()
    engine = engine_with(bus)
    await engine.on_pushed_log(pushed(2, 100))
    assert await engine.on_block(block(2, 100)) == 2
    await engine.on_reorg([Checkpoint(2, block(2, 100).hash)])
    assert await engine.on_block(block(2, 100)) == 2
    assert findings(bus) == [("by-args", 2), ("by-sender", 2), ("by-args", 2), ("by-sender", 2)]
    await engine.on_pushed_log(pushed(2, 100, removed=True))  # the removal, late: F was not pushed since
    assert len([m for _t, m in bus.published if isinstance(m, Retraction)]) == 1
