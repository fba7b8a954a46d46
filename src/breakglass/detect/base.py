"""What every detector sees and returns: the ``BlockContext`` of one block, and ``Finding``s.

A detector is a small object with ``reads()`` (view calls it needs each block; most need none) and
``on_block(ctx)``. The engine reads every detector's calls in one round trip, decodes each log once,
and hands all detectors the same context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from breakglass.config.monitors import SeverityName
from breakglass.detect.abi import EventAbi
from breakglass.detect.expr import to_cel
from breakglass.detect.reads import ReadCall
from breakglass.domain import Block, Finding, FindingHasher, Log, Severity, Tx

__all__ = ["BlockContext", "DecodedLog", "Detector", "FindingMaker", "Interest", "jsonable", "tx_vars"]


@dataclass(frozen=True, slots=True)
class DecodedLog:
    log: Log
    contract: str
    event: EventAbi
    args: Mapping[str, Any]
    tx: Tx


def jsonable(value: Any) -> Any:
    """Decoded ABI values as JSON-ready evidence: bytes as 0x-hex, tuples as lists."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


def tx_vars(tx: Tx) -> dict[str, Any]:
    receipt = tx.receipt
    return {
        "hash": tx.hash,
        "from": tx.sender.lower(),
        "to": tx.to.lower() if tx.to else "",
        "value": tx.value,
        "input": "0x" + tx.input.hex(),
        "selector": "0x" + tx.input[:4].hex(),
        "nonce": tx.nonce,
        "gas": tx.gas,
        "index": tx.index,
        "status": receipt.status if receipt else 1,
        "gas_used": receipt.gas_used if receipt else 0,
        "created": (receipt.contract_address or "").lower() if receipt else "",
    }


@dataclass
class BlockContext:
    """One block as the detectors see it. Built once per block by the engine."""

    chain_id: int
    block: Block
    reads: Mapping[str, Any]
    """Decoded view-call results by ``ReadCall.key`` (``ReadFailed`` where a call failed)."""
    logs: Sequence[DecodedLog]
    """Logs of configured contracts, decoded once."""
    contracts: Mapping[str, str]
    """Configured contract name -> lowercase address."""
    state_read: bool = True
    """False deep in a backfill (beyond the engine's state horizon): ``reads`` is empty by design."""
    code_hashes: Mapping[str, str] = field(default_factory=dict)
    """Lowercase address -> keccak of runtime code, for contracts created in this block."""
    observed_at_ms: float = 0.0
    balances: Mapping[str, int] = field(default_factory=dict)
    """Lowercase address -> ether balance in wei at this block, of accounts balance monitors watch."""
    _tx_cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    _args_cache: dict[int, tuple[Mapping[str, Any], Any]] = field(default_factory=dict)
    _plain_cache: dict[int, tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=dict)
    _block_vars: dict[str, Any] | None = None

    def tx(self, tx: Tx) -> dict[str, Any]:
        """CEL variables of ``tx``, computed once per block."""
        found = self._tx_cache.get(tx.hash)
        if found is None:
            found = self._tx_cache[tx.hash] = tx_vars(tx)
        return found

    def plain(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Decoded arguments as JSON-ready evidence (bytes as 0x-hex), once per block per log: every
        monitor of one event gets its own copy of the same values."""
        cached = self._plain_cache.get(id(args))
        if cached is None or cached[0] is not args:
            cached = self._plain_cache[id(args)] = (args, jsonable(dict(args)))
        return dict(cached[1])

    def block_vars(self) -> dict[str, Any]:
        if self._block_vars is None:
            b = self.block
            self._block_vars = {"number": b.number, "timestamp": b.timestamp, "hash": b.hash}
        return self._block_vars

    def variables(
        self, tx: Tx | None = None, args: Mapping[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"block": self.block_vars(), "contracts": self.contracts}
        if tx is not None:
            out["tx"] = self.tx(tx)
        if args is not None:
            out["args"] = self.cel_args(args)
        out.update(extra)
        return out

    def cel_args(self, args: Mapping[str, Any]) -> Any:
        """Decoded arguments as expressions see them (``to_cel``): several monitors of one event
        read the same ones, converted once per block."""
        cached = self._args_cache.get(id(args))
        if cached is None or cached[0] is not args:
            cached = self._args_cache[id(args)] = (args, to_cel(args))
        return cached[1]


@dataclass(frozen=True, slots=True)
class Interest:
    """Which blocks a detector can find anything in; the engine skips it on every other block.

    A detector declares it as an ``interest`` attribute; one without runs on every block (flows and
    plugins: they keep windows). Most blocks of a backfill touch no
    configured contract, so most detectors are never called on them.
    """

    logs: frozenset[tuple[str, str]] = frozenset()
    """(lowercase address, topic0) of decoded logs that wake it"""
    transactions: bool = False
    """any block with at least one transaction wakes it"""
    state: bool = False
    """any block whose state the engine read wakes it (invariants: nothing else to look at, and a
    backfill reads no state deeper than the engine's horizon)"""
    other_logs: bool = True
    """``on_block`` may look at decoded logs (``ctx.logs``) other than those ``logs`` names (governance
    reads every log of the protocol's contracts). When no detector does, the engine decodes only the
    logs that wake one: a token's transfers that no monitor asks for are never decoded."""


class Detector(Protocol):
    monitor_id: str

    def reads(self) -> Sequence[ReadCall]: ...

    def on_block(self, ctx: BlockContext) -> list[Finding]: ...


class FindingMaker:
    """Builds this monitor's findings with its id, severity, title and labels filled in."""

    def __init__(
        self, monitor_id: str, severity: SeverityName, title: str, labels: Mapping[str, str]
    ) -> None:
        self.monitor_id = monitor_id
        self.severity = Severity.parse(severity)
        self.title = title
        self.labels = dict(labels)
        self._hasher: FindingHasher | None = None
        """this monitor's findings on the last chain seen that add no labels (nearly all of them)"""

    def __call__(
        self,
        ctx: BlockContext,
        *,
        tx: Tx | None = None,
        log: Log | None = None,
        evidence: Mapping[str, Any] | None = None,
        title: str | None = None,
        labels: Mapping[str, str] | None = None,
        severity: Severity | None = None,
        breach: str = "",
    ) -> Finding:
        if not labels:
            hasher = self._hasher
            if hasher is None or hasher.chain_id != ctx.chain_id or hasher.labels != self.labels:
                hasher = self._hasher = FindingHasher(self.monitor_id, ctx.chain_id, self.labels)
            block = ctx.block
            return hasher.build(
                severity if severity is not None else self.severity,
                block.number,
                block.hash,
                title or self.title,
                tx.hash if tx else (log.tx_hash if log else None),
                log.log_index if log else None,
                dict(evidence or {}),
                ctx.observed_at_ms,
                breach,
            )
        return Finding(
            monitor_id=self.monitor_id,
            severity=severity if severity is not None else self.severity,
            chain_id=ctx.chain_id,
            block_number=ctx.block.number,
            block_hash=ctx.block.hash,
            title=title or self.title,
            tx_hash=tx.hash if tx else (log.tx_hash if log else None),
            log_index=log.log_index if log else None,
            labels={**self.labels, **labels},
            evidence=dict(evidence or {}),
            observed_at_ms=ctx.observed_at_ms,
            breach=breach,
        )
