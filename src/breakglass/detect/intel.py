"""Threat-intel lists: known-bad addresses, runtime code hashes and function selectors.

Addresses match a transaction's sender or recipient, a created contract, or a log's emitter; code
hashes match contracts created in the block (the engine reads their code in its batch); selectors
match top-level calldata. Indicator files hold one indicator per line (``#`` comments allowed);
the kind is told by its length. Stateless across blocks (the lists only): nothing to rewind on a reorg.

Indicators pulled from peers (``sources``: ``breakglass intel pull``, ``breakglass.intel.feed``) match
addresses and code hashes the same way, at their source's severity, while they live (their expiry is
compared with the block's timestamp); the store is re-read when a pull changes it, so a running
``serve`` sees new indicators on its next block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from breakglass.config.monitors import IntelMonitor
from breakglass.detect.base import BlockContext, FindingMaker, Interest
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding, Severity, Tx
from breakglass.errors import DetectionError
from breakglass.intel.feed import FeedIndicators, ImportedIndicator

__all__ = ["IntelDetector", "read_indicators"]


def read_indicators(
    lines: Iterable[str], monitor_id: str, source: str
) -> tuple[set[str], set[str], set[str]]:
    """(addresses, code hashes, selectors) from indicator lines."""
    addresses: set[str] = set()
    hashes: set[str] = set()
    selectors: set[str] = set()
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip().lower()
        if not text:
            continue
        target = {42: addresses, 66: hashes, 10: selectors}.get(len(text))
        if target is None or not text.startswith("0x"):
            raise DetectionError(
                monitor_id, f"{source}:{number}: {text!r} is not an address, code hash or selector"
            )
        target.add(text)
    return addresses, hashes, selectors


class IntelDetector:
    def __init__(self, cfg: IntelMonitor, base_dir: Path, feed_store: Path | None = None) -> None:
        self.monitor_id = cfg.id
        self.interest = Interest(transactions=True, other_logs=False)  # nothing to see in a block without one
        self.addresses = {a.lower() for a in cfg.addresses}
        self.code_hashes = {h.lower() for h in cfg.code_hashes}
        self.selectors = {s.lower() for s in cfg.selectors}
        for name in cfg.files:
            path = base_dir / name
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise DetectionError(cfg.id, f"cannot read indicator file {path}: {exc}") from None
            a, h, s = read_indicators(lines, cfg.id, str(path))
            self.addresses |= a
            self.code_hashes |= h
            self.selectors |= s
        self.make = FindingMaker(cfg.id, cfg.severity, cfg.title or "threat-intel indicator seen", cfg.labels)
        self.feed = (
            FeedIndicators(feed_store, cfg.sources) if cfg.sources and feed_store is not None else None
        )

    @property
    def wants_code(self) -> bool:
        return bool(self.code_hashes) or self.feed is not None  # a pull may bring code hashes later

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        if self.feed is not None:
            self.feed.refresh()
        now_ms = ctx.block.timestamp * 1000
        for tx in ctx.block.transactions:
            hits: list[tuple[str, str]] = []
            for role, value in (("sender", tx.sender), ("recipient", tx.to)):
                if value is not None and self._known(value.lower(), now_ms):
                    hits.append((role, value.lower()))
            selector = "0x" + tx.input[:4].hex()
            if len(tx.input) >= 4 and selector in self.selectors:
                hits.append(("selector", selector))
            if tx.receipt is not None:
                created = (tx.receipt.contract_address or "").lower()
                if created and self._known(created, now_ms):
                    hits.append(("created", created))
                code_hash = ctx.code_hashes.get(created)
                if code_hash is not None and self._known(code_hash, now_ms):
                    hits.append(("code_hash", code_hash))
                hits += [
                    ("emitter", log.address.lower())
                    for log in tx.receipt.logs
                    if self._known(log.address.lower(), now_ms)
                ]
            for kind, indicator in dict.fromkeys(hits):
                shared = self._shared(indicator, now_ms)
                if shared is not None:
                    out.append(self._shared_finding(ctx, tx, kind, shared))
                    continue
                if not self._listed(kind, indicator):
                    continue
                out.append(
                    self.make(
                        ctx,
                        tx=tx,
                        evidence={"match": kind, "indicator": indicator},
                        title=f"threat-intel {kind} {indicator}",
                        labels={"indicator": indicator},
                    )
                )
        return out

    def _listed(self, kind: str, indicator: str) -> bool:
        if kind == "selector":
            return indicator in self.selectors
        return indicator in (self.code_hashes if kind == "code_hash" else self.addresses)

    def _shared(self, value: str, now_ms: int) -> ImportedIndicator | None:
        return self.feed.match(value, now_ms) if self.feed is not None else None

    def _known(self, value: str, now_ms: int) -> bool:
        return value in self.addresses or value in self.code_hashes or self._shared(value, now_ms) is not None

    def _shared_finding(self, ctx: BlockContext, tx: Tx, kind: str, shared: ImportedIndicator) -> Finding:
        return self.make(
            ctx,
            tx=tx,
            severity=Severity.parse(shared.severity),
            evidence={
                "match": kind,
                "indicator": shared.value,
                # who to block: the sender when it is the indicator's (or deployed its code), else the
                # indicator itself (funded, called, or emitting)
                "attacker": tx.sender.lower() if kind in ("sender", "created", "code_hash") else shared.value,
                "source": shared.source,
                "signer": shared.signer,
                "confidence": shared.confidence,
                "shared_incident": shared.incident,
                "stix_id": shared.stix_id,
            },
            title=f"shared threat-intel {kind} {shared.value} (from {shared.source})",
            labels={"indicator": shared.value, "intel_source": shared.source},
        )
