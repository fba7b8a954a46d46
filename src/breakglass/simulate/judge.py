"""The verdict on one simulated pending transaction: the block path's detectors on its post-state.

Pure: given the simulation's answer, the judge builds the ``BlockContext`` of a one-transaction block
(the post-state reads, the transaction's logs decoded once) and runs on it:

- the invariants (``InvariantSet.evaluate(..., remember=False)``), reporting only those the pending
  transaction breaks: each read before it and after it in the same simulation;
- flows on a copy of their window (the real window is untouched; the simulated block is counted once);
- the stateless detectors: event, call and transaction filters, governance, threat intel.

Set-up signals (stateful, and about history rather than one transaction) and plugins' block handlers
stay on the block path; plugins' ``on_pending`` handlers run here. Every finding is re-made with
``stage=pending``, the pending transaction's hash and fee fields (``evidence.pending_fees``, which the
responder outbids) and the simulated evidence.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from breakglass.detect.abi import AbiIndex
from breakglass.detect.base import BlockContext, DecodedLog, Detector, FindingMaker
from breakglass.detect.filters import CallDetector, EventDetector, TransactionDetector
from breakglass.detect.flows import FlowDetector
from breakglass.detect.governance import GovernanceDetector
from breakglass.detect.intel import IntelDetector
from breakglass.detect.invariants import InvariantSet, Violation
from breakglass.detect.plugins import PluginDetector
from breakglass.detect.reads import ReadCall, decode_results
from breakglass.domain import (
    Block,
    Finding,
    FindingStage,
    Hash32,
    PendingTx,
    Receipt,
    Severity,
    Tx,
    breach_of,
)
from breakglass.simulate.request import SimulatedBlock

__all__ = ["Judge", "pending_fees"]

_STATELESS = (EventDetector, CallDetector, TransactionDetector, GovernanceDetector, IntelDetector)


def pending_fees(tx: Tx) -> dict[str, int | None]:
    """The fee fields a responder needs to outbid ``tx`` (``respond.responder.outbid_from`` reads them)."""
    return {
        "max_fee_per_gas": tx.max_fee_per_gas,
        "max_priority_fee_per_gas": tx.max_priority_fee_per_gas,
        "gas_price": tx.gas_price,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


class Judge:
    """The block path's detectors, applied to simulated post-states. Shares their instances (flows
    read the real window), never mutates them."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        invariants: InvariantSet,
        *,
        chain_id: int,
        abi: AbiIndex,
        contracts: Mapping[str, str],
        reads: Sequence[ReadCall],
    ) -> None:
        self.chain_id = chain_id
        self.invariants = invariants
        self.abi = abi
        self.contracts = dict(contracts)
        self.reads = list(reads)
        """every view call any detector reads (invariants and flow balances), in simulation order"""
        self.stateless = [d for d in detectors if isinstance(d, _STATELESS)]
        self.flows = [d for d in detectors if isinstance(d, FlowDetector)]
        self.plugins = [d for d in detectors if isinstance(d, PluginDetector)]
        self._makers = {
            inv.cfg.id: FindingMaker(
                inv.cfg.id,
                inv.cfg.severity,
                inv.cfg.title or f"invariant broken: {inv.cfg.expect}",
                inv.cfg.labels,
            )
            for inv in invariants.invariants
        }
        self._calls = {inv.cfg.id: inv.calls for inv in invariants.invariants}
        self._before: dict[tuple[Any, ...], tuple[dict[str, Any], set[str]]] = {}

    def context(self, pending: PendingTx, sim: SimulatedBlock, observed_at_ms: float) -> BlockContext:
        tx = pending.tx
        receipt = Receipt(
            tx_hash=tx.hash,
            status=sim.tx.status,
            gas_used=sim.tx.gas_used,
            effective_gas_price=tx.max_fee_per_gas or tx.gas_price or 0,
            contract_address=None,
            logs=sim.tx.logs,
        )
        mined = msgspec.structs.replace(tx, index=0, receipt=receipt)
        block = Block(
            number=sim.number,
            hash=Hash32(sim.hash.lower()),
            parent_hash=Hash32("0x" + "00" * 32),
            timestamp=sim.timestamp,
            base_fee=sim.base_fee,
            transactions=(mined,),
        )
        logs: list[DecodedLog] = []
        if sim.tx.status == 1:
            for entry in sim.tx.logs:
                decoded = self.abi.decode_log(entry)
                if decoded is not None:
                    logs.append(DecodedLog(entry, self.abi.names[entry.address.lower()], *decoded, mined))
        reads = decode_results(self.reads, sim.after)
        return BlockContext(self.chain_id, block, reads, logs, self.contracts, observed_at_ms=observed_at_ms)

    def judge(self, pending: PendingTx, sim: SimulatedBlock, observed_at_ms: float) -> list[Finding]:
        """Findings on the post-state of ``pending``: empty when it reverts (it changes nothing)."""
        if sim.tx.status != 1:
            return []
        ctx = self.context(pending, sim, observed_at_ms)
        found = self._invariants(ctx, sim)
        for flow in self.flows:
            peek = copy.copy(flow)  # the real flow's deques are not the peek's to change
            peek.window, peek.expired = deque(flow.window), deque(flow.expired, maxlen=flow.expired.maxlen)
            peek._quiet_history, peek._breach_history = deque(maxlen=1), deque(maxlen=1)
            found += peek.on_block(ctx)
        for detector in self.stateless:
            found += detector.on_block(ctx)
        for plugin in self.plugins:
            found += plugin.on_pending(pending)
        return [self._pending(f, pending, sim, ctx) for f in found]

    def _failing_before(self, sim: SimulatedBlock, key: tuple[Any, ...]) -> tuple[dict[str, Any], set[str]]:
        """Invariants already failing on the latest state: not the pending transaction's doing (the
        block path has them). Every pending tx of one head reads the same state: computed once."""
        found = self._before.get(key)
        if found is None:
            before = decode_results(self.reads, sim.before)
            violations = self.invariants.evaluate(
                before, block_number=sim.number - 1, timestamp=sim.timestamp, remember=False
            )
            found = self._before[key] = (before, {v.monitor_id for v in violations})
            while len(self._before) > 8:
                self._before.pop(next(iter(self._before)))
        return found

    def _invariants(self, ctx: BlockContext, sim: SimulatedBlock) -> list[Finding]:
        key = tuple(r if isinstance(r, bytes) else str(r) for r in sim.before)
        if key == tuple(r if isinstance(r, bytes) else str(r) for r in sim.after):
            return []  # it changed none of the values read: it cannot be what breaks an invariant
        before, failing = self._failing_before(sim, key)
        after: list[Violation] = self.invariants.evaluate(
            ctx.reads, block_number=sim.number, timestamp=sim.timestamp, remember=False, before=before
        )
        out: list[Finding] = []
        for v in after:
            if v.monitor_id in failing:
                continue
            make = self._makers[v.monitor_id]
            evidence: dict[str, Any] = {
                "expect": v.expression,
                "values": {k: _plain(x) for k, x in v.values.items()},
                "before": {
                    name: _plain(before.get(call.key)) for name, call in self._calls[v.monitor_id].items()
                },
            }
            severity = None
            if v.error:
                evidence["error"] = v.error
                severity = Severity.MEDIUM if make.severity > Severity.MEDIUM else None
            title = f"invariant could not be evaluated: {v.error}" if v.error else None
            breach = breach_of(v.monitor_id, self.chain_id, make.labels, sim.number)
            out.append(make(ctx, evidence=evidence, severity=severity, title=title, breach=breach))
        return out

    def _pending(
        self, finding: Finding, pending: PendingTx, sim: SimulatedBlock, ctx: BlockContext
    ) -> Finding:
        tx = pending.tx
        simulated = {
            "block": sim.number,
            "status": sim.tx.status,
            "gas_used": sim.tx.gas_used,
            "logs": len(sim.tx.logs),
            "protocol_logs": [f"{d.contract}.{d.event.name}" for d in ctx.logs],
        }
        evidence: dict[str, Any] = {
            **finding.evidence,
            "pending_fees": pending_fees(tx),
            "simulated": simulated,
            "sender": tx.sender.lower(),
            "to": tx.to.lower() if tx.to else None,
        }
        if tx.to is not None and tx.to.lower() not in ctx.contracts.values():
            # the sender calls a contract of its own: that sender is who to block
            evidence.setdefault("attacker", tx.sender)
        return replace(
            finding,
            stage=FindingStage.PENDING,
            tx_hash=tx.hash,
            block_hash=None,
            evidence=evidence,
            fingerprint="",
            # a state monitor's breach, predicted to begin in the simulated block, is kept (the
            # responder matches it with the block path's); any other names the pending transaction
            breach=finding.breach if "@" in finding.breach else "",
        )
