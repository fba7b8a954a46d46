"""The engine on synthetic blocks: flows over a sliding window, retractions of orphaned blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import encode
from test_abi_and_reads import CONTRACTS, TOKEN, TRANSFER, VAULT, transfer_log  # type: ignore[import-not-found]

from breakglass.chain.checkpoint import Checkpoint
from breakglass.config.monitors import EventMonitor, FlowMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.filters import EventDetector
from breakglass.detect.flows import FlowDetector
from breakglass.detect.reads import ReadCall
from breakglass.domain import Address, Block, Hash32, Receipt, Tx
from breakglass.messages.findings import Retraction


class Balances:
    def __init__(self, balance: int) -> None:
        self.balance = balance

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]:
        return [encode(["uint256"], [self.balance]) for _ in calls]


class Bus:
    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    async def publish(self, topic: str, message: Any) -> None:
        self.published.append((topic, message))

    def subscribe(self, topic: str, durable: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def block(number: int, outflow: int | None) -> Block:
    txs: tuple[Tx, ...] = ()
    if outflow is not None:
        log = transfer_log(outflow)
        receipt = Receipt(log.tx_hash, 1, 50_000, 1, None, (log,))
        txs = (Tx(log.tx_hash, Address(VAULT), Address(TOKEN), 0, b"", 0, 1, None, None, 1, 0, receipt),)
    return Block(number, Hash32(f"0x{number:064x}"), Hash32(f"0x{number - 1:064x}"), 12 * number, 1, txs)


async def test_a_flow_fires_once_per_window_when_the_fraction_is_crossed() -> None:
    cfg = FlowMonitor(
        id="out", kind="flow", token="token", holders=["vault"], window_blocks=3, max_fraction=0.3
    )
    balances = Balances(1000)
    engine = DetectionEngine(
        [FlowDetector(cfg, CONTRACTS)], chain_id=1, contracts=CONTRACTS, executor=balances
    )
    fired = []
    for number, outflow, balance in [
        (1, 100, 900),
        (2, 100, 800),
        (3, 200, 600),
        (4, 50, 550),
        (5, None, 550),
        (6, None, 550),
        (7, None, 550),
        (8, 300, 250),
    ]:
        balances.balance = balance
        fired += [(number, f.evidence["outflow"]) for f in await engine.evaluate(block(number, outflow))]
    # blocks 1-3: 400 of 1000 left (40%); block 4 is the same window; block 8: 300 of 550 (55%)
    assert fired == [(3, 400), (8, 300)]


async def test_orphaned_blocks_are_retracted_with_their_findings_fingerprints() -> None:
    cfg = EventMonitor(id="moves", kind="event", contract="token", event="Transfer")
    bus = Bus()
    detector = EventDetector(cfg, TOKEN, EventAbi.of(TRANSFER))
    engine = DetectionEngine([detector], chain_id=1, contracts=CONTRACTS, executor=Balances(0), bus=bus)
    assert await engine.on_block(block(7, 5)) == 1
    assert await engine.on_block(block(8, None)) == 0
    finding = bus.published[0][1]
    await engine.on_reorg([Checkpoint(8, block(8, None).hash), Checkpoint(7, block(7, 5).hash)])
    retractions = [m for t, m in bus.published if t == "retractions"]
    assert retractions == [
        Retraction(1, 8, block(8, None).hash, ()),
        Retraction(1, 7, block(7, 5).hash, (finding.fingerprint,)),
    ]
    # made after the block was evaluated, on the clock of its findings' observed_at_ms: a finding
    # observed later is of the block handled again, canonical again (alerts/dedup.py)
    assert all(r.at_ms >= finding.observed_at_ms > 0 for r in retractions)
