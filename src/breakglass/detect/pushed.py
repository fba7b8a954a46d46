"""Event monitors on logs as the node pushes them: findings before the block is even fetched.

The follower's WebSocket subscribes to ``logs`` of the configured contracts next to ``newHeads``
(at confirmation depth 0). An event monitor whose filter reads nothing but the log (``args``, ``log``,
``contracts``) is judged on each pushed log at once: no round trip between the node's push and the
finding. Monitors that read the transaction or the block (``tx.from``, ``block.timestamp``) wait for
the block, as do every other kind. The block path later sees the same logs; the engine publishes
only what was not already published from the push (same fingerprint), so a finding goes out once.
A log pushed again as ``removed`` (a reorg) retracts what it raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from breakglass.chain.decode import RawLog, decode_log
from breakglass.detect.abi import AbiIndex
from breakglass.detect.base import BlockContext, DecodedLog, Detector
from breakglass.detect.filters import EventDetector
from breakglass.domain import Address, Block, Finding, Hash32, Log, Tx

__all__ = ["PushedLogs"]

_LOG_ONLY = frozenset({"args", "log", "contracts"})


def _log_only(detector: Detector) -> bool:
    if not isinstance(detector, EventDetector):
        return False
    return detector.where is None or detector.where.variables <= _LOG_ONLY


class PushedLogs:
    """Which event monitors can judge a pushed log alone, and their verdict on one (pure)."""

    def __init__(self, detectors: Sequence[Detector], abi: AbiIndex, contracts: Mapping[str, str]) -> None:
        self.detectors = [d for d in detectors if _log_only(d)]
        self.abi = abi
        self.contracts = contracts
        self._by_key: dict[tuple[str, str], list[Detector]] = {}
        for detector in self.detectors:
            assert isinstance(detector, EventDetector)
            self._by_key.setdefault((detector.address, detector.event.topic0), []).append(detector)

    @property
    def monitor_ids(self) -> frozenset[str]:
        return frozenset(d.monitor_id for d in self.detectors)

    def addresses(self) -> list[str]:
        """The contracts whose logs to subscribe to (none: no monitor can use a pushed log)."""
        return sorted({address for address, _topic in self._by_key})

    def judge(
        self, raw: Mapping[str, Any], chain_id: int, observed_at_ms: float
    ) -> tuple[Log, list[Finding]]:
        """The findings of one pushed log (``ChainDataError`` if it is malformed)."""
        log = decode_log(RawLog(**raw), "logs", "")  # type: ignore[typeddict-item]
        detectors = self._by_key.get((log.address.lower(), log.topics[0] if log.topics else ""), [])
        decoded = self.abi.decode_log(log) if detectors else None
        if decoded is None:
            return log, []
        # the transaction is known by hash only: these monitors read nothing else of it
        nobody = Address("0x" + "00" * 20)
        tx = Tx(log.tx_hash, nobody, log.address, 0, b"", 0, 0, None, None, None, log.tx_index)
        block = Block(log.block_number, log.block_hash, Hash32("0x" + "00" * 32), 0, None, ())
        item = DecodedLog(log, self.abi.names[log.address.lower()], decoded[0], decoded[1], tx)
        ctx = BlockContext(
            chain_id=chain_id,
            block=block,
            reads={},
            logs=[item],
            contracts=self.contracts,
            state_read=False,
            observed_at_ms=observed_at_ms,
        )
        findings: list[Finding] = []
        for detector in detectors:
            findings += detector.on_block(ctx)
        return log, findings
