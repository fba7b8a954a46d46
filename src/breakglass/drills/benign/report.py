"""What a benign run is asked to do (``BenignConfig``) and what it did (``BenignReport``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BenignConfig", "BenignReport"]


@dataclass(frozen=True, slots=True)
class BenignConfig:
    seed: int = 7
    traders: int = 24
    lps: int = 6
    block_seconds: int = 12
    tick_every: int = 5  # blocks between feed updates
    push_every: int = 60  # blocks between forwarder price pushes
    governance_every: int = 400  # blocks between governance proposals
    swing: float = 0.15  # the volatile day's move, up for ETH and down for BTC, then part way back
    first_trader_index: int = 30
    builders: int = 4  # honest users who deploy a contract of their own that uses the venue (builders.py)
    build_every: int = 50  # blocks between two of their deployments


@dataclass
class BenignReport:
    blocks: int = 0
    transactions: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    reverts: list[dict[str, Any]] = field(default_factory=list)
    liquidations: int = 0
    governance_executed: int = 0
    first_block: int = 0
    last_block: int = 0
    price_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def unexpected_reverts(self) -> int:
        return len(self.reverts)

    def summary(self) -> dict[str, Any]:
        return {
            "blocks": self.blocks,
            "transactions": self.transactions,
            "tx per block": round(self.transactions / max(self.blocks, 1), 2),
            "reverts": self.unexpected_reverts,
            "liquidations": self.liquidations,
            "governance executed": self.governance_executed,
            **{f"{m} range": f"{lo:,.2f} .. {hi:,.2f}" for m, (lo, hi) in self.price_range.items()},
            "wall seconds": round(self.wall_seconds, 1),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "by_kind": dict(self.by_kind),
            "revert_list": self.reverts,
            "first_block": self.first_block,
            "last_block": self.last_block,
        }
