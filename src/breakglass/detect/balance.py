"""Balance monitors: an account's ether balance below its floor, once per breach.

The engine reads ``eth_getBalance`` of every watched account at each block whose state it reads, in
the same JSON-RPC batch as the block's view calls (``DetectionEngine.balance_accounts``: no extra
round trip), and puts the values in ``BlockContext.balances``. A breach raises one finding; the
balance must come back above the floor before another is raised. On a reorg the breach state
rewinds with the orphaned blocks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from breakglass.config.monitors import BalanceMonitor
from breakglass.detect.base import BlockContext, FindingMaker, Interest
from breakglass.detect.reads import ReadCall
from breakglass.detect.rewind import UNDO_BLOCKS
from breakglass.domain import Finding

__all__ = ["BalanceDetector"]

WEI = 10**18


class BalanceDetector:
    interest = Interest(state=True, other_logs=False)

    def __init__(self, cfg: BalanceMonitor) -> None:
        self.monitor_id = cfg.id
        self.account = cfg.address.lower()
        self.floor = int(cfg.min_eth * WEI)
        self.make = FindingMaker(
            cfg.id,
            cfg.severity,
            cfg.title or f"balance of {cfg.address} below {cfg.min_eth:g} ETH",
            cfg.labels,
        )
        self._low = False
        self._history: deque[tuple[int, bool]] = deque(maxlen=UNDO_BLOCKS)

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def balances(self) -> Sequence[str]:
        return (self.account,)

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        value = ctx.balances.get(self.account) if ctx.state_read else None
        if value is None:
            return []
        low = value < self.floor
        if low == self._low:
            return []
        self._history.append((ctx.block.number, self._low))
        self._low = low
        if not low:
            return []
        evidence = {"account": self.account, "balance_wei": value, "floor_wei": self.floor}
        return [self.make(ctx, evidence=evidence)]

    def rewind(self, to_block: int) -> None:
        while self._history and self._history[-1][0] > to_block:
            self._low = self._history.pop()[1]
