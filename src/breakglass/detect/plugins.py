"""The Python plugin API: for what configuration cannot express, a class with a few handlers.

    class LargeMint:
        def __init__(self, options: dict[str, object]) -> None: ...
        def on_block(self, ctx: PluginContext, block: Block) -> Iterable[Finding]: ...
        def on_transaction(self, ctx: PluginContext, tx: Tx, block: Block) -> Iterable[Finding]: ...
        def on_pending(self, ctx: PluginContext, pending: PendingTx) -> Iterable[Finding]: ...
        def rewind(self, to_block: int) -> None: ...

Every handler is optional; return findings made with ``ctx.finding(...)`` (monitor id, severity,
chain and block filled in). A plugin that keeps state across blocks (counters, windows) implements
``rewind``: on a reorg it must forget everything learned from blocks above ``to_block`` (the common
ancestor) before it sees the new branch; without it a stateful plugin keeps the orphaned blocks'
state (``detect/rewind.py`` has an ``UndoLog`` for that). Declared in YAML as ``kind: plugin`` with
``plugin: "package.module:Class"`` and ``options``. Handlers run on the event loop: keep them fast,
do no blocking I/O.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from breakglass.config.monitors import PluginMonitor
from breakglass.detect.base import BlockContext, FindingMaker
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding, FindingStage, PendingTx, Severity, Tx

__all__ = ["Plugin", "PluginContext", "PluginDetector", "load_plugin"]


@runtime_checkable
class Plugin(Protocol):
    """Marker protocol; implement any of ``on_block``, ``on_transaction``, ``on_pending``, ``rewind``."""

    def __init__(self, options: dict[str, object]) -> None: ...


@dataclass
class PluginContext:
    """What a plugin handler gets besides the data: the chain, the contracts, a finding factory."""

    chain_id: int
    contracts: Mapping[str, str]
    block: BlockContext | None
    _make: FindingMaker

    def finding(
        self,
        title: str,
        *,
        tx: Tx | None = None,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Finding:
        if self.block is None:
            raise RuntimeError("ctx.finding() in on_pending: use ctx.pending_finding()")
        return self._make(self.block, tx=tx, evidence=evidence, title=title, severity=severity, labels=labels)

    def pending_finding(
        self,
        pending: PendingTx,
        title: str,
        *,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
    ) -> Finding:
        return Finding(
            monitor_id=self._make.monitor_id,
            severity=severity if severity is not None else self._make.severity,
            chain_id=self.chain_id,
            block_number=0,
            title=title,
            stage=FindingStage.PENDING,
            tx_hash=pending.tx.hash,
            labels=dict(self._make.labels),
            evidence=dict(evidence or {}),
            observed_at_ms=pending.seen_at_ms,
        )


def load_plugin(cfg: PluginMonitor) -> Any:
    module_name, _, class_name = cfg.plugin.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    return cls(dict(cfg.options))


class PluginDetector:
    def __init__(self, cfg: PluginMonitor, plugin: Any, contracts: Mapping[str, str], chain_id: int) -> None:
        self.monitor_id = cfg.id
        self.plugin = plugin
        self.contracts = contracts
        self.chain_id = chain_id
        self.make = FindingMaker(cfg.id, cfg.severity, cfg.title or cfg.id, cfg.labels)

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        pctx = PluginContext(ctx.chain_id, self.contracts, ctx, self.make)
        out: list[Finding] = []
        on_block = getattr(self.plugin, "on_block", None)
        if on_block is not None:
            out += list(on_block(pctx, ctx.block) or ())
        on_tx = getattr(self.plugin, "on_transaction", None)
        if on_tx is not None:
            for tx in ctx.block.transactions:
                out += list(on_tx(pctx, tx, ctx.block) or ())
        return out

    def rewind(self, to_block: int) -> None:
        """The plugin's own ``rewind`` when it has one (a stateless plugin needs none)."""
        rewind = getattr(self.plugin, "rewind", None)
        if rewind is not None:
            rewind(to_block)

    def on_pending(self, pending: PendingTx) -> list[Finding]:
        handler = getattr(self.plugin, "on_pending", None)
        if handler is None:
            return []
        found: Iterable[Finding] = (
            handler(PluginContext(self.chain_id, self.contracts, None, self.make), pending) or ()
        )
        return list(found)
