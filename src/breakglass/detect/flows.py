"""Flows: net outflow of a token from a set of holders over a sliding window of blocks or seconds.

Net outflow counts ERC-20 ``Transfer`` logs of the token leaving the set minus those entering it
(moves between holders cancel). The fraction is taken of the holders' balance at the start of the
window, i.e. their current balance (read each block, in the engine's batch) plus the window's outflow.
A flow fires once when it crosses a limit and again only after the window has slid past that block.

On a reorg, ``rewind(ancestor)`` drops the orphaned blocks' outflow and brings back the entries that
slid out of the window since (the last ``UNDO_BLOCKS`` are kept), so a transfer replayed on the new
branch is counted once; the quiet period of a finding raised in an orphaned block is lifted.

A flow over its limit is one breach (``domain.breach_of``, from the first block over it) until the
outflow falls back under the limit: a finding raised again after the quiet period names the same
breach, so actions are not repeated. The window, the quiet period and the breach survive a restart
(``snapshot``/``restore``, written with the follower's checkpoint).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from breakglass.config.monitors import FlowMonitor
from breakglass.detect.abi import EventAbi, find_event
from breakglass.detect.base import BlockContext, FindingMaker
from breakglass.detect.reads import Contracts, ReadCall, ReadFailed, parse_call
from breakglass.detect.rewind import UNDO_BLOCKS
from breakglass.domain import Finding, breach_of
from breakglass.errors import DetectionError

__all__ = ["FlowDetector"]


class FlowDetector:
    def __init__(self, cfg: FlowMonitor, contracts: Contracts) -> None:
        self.monitor_id = cfg.id
        self.cfg = cfg
        token_address, token_abi = contracts[cfg.token]
        event = find_event(token_abi, "Transfer") or EventAbi.of(_ERC20_TRANSFER)
        if len(event.all_names) != 3:
            raise DetectionError(cfg.id, f"{cfg.token} has no ERC-20 Transfer(from, to, value) event")
        self.transfer = event
        self.token = token_address.lower()
        self.holders = {contracts[h][0].lower() for h in cfg.holders}
        self.balance_calls = [
            parse_call(f"{cfg.token}.balanceOf({h})", contracts, cfg.id) for h in cfg.holders
        ]
        self.window: deque[tuple[int, int, int]] = deque()
        """(block number, timestamp, net outflow in that block)"""
        self.expired: deque[tuple[int, int, int]] = deque(maxlen=UNDO_BLOCKS)
        """Entries that slid out of the window, newest last: a rewind brings them back."""
        self.quiet_until: int | float = -1
        self._quiet_history: deque[tuple[int, int | float]] = deque(maxlen=UNDO_BLOCKS)
        """(block that set ``quiet_until``, its value before)"""
        self.breach_since: int | None = None
        """the first block of the current run over the limit (None: under it)"""
        self._breach_history: deque[tuple[int, int | None]] = deque(maxlen=UNDO_BLOCKS)
        """(block that changed ``breach_since``, its value before)"""
        self.make = FindingMaker(
            cfg.id,
            cfg.severity,
            cfg.title or f"{cfg.token} outflow from {', '.join(cfg.holders)}",
            cfg.labels,
        )

    def reads(self) -> Sequence[ReadCall]:
        return self.balance_calls

    def _net(self, ctx: BlockContext) -> int:
        net = 0
        from_name, to_name, value_name = self.transfer.all_names
        for item in ctx.logs:
            if item.event.topic0 != self.transfer.topic0 or item.log.address.lower() != self.token:
                continue
            src, dst = str(item.args[from_name]).lower(), str(item.args[to_name]).lower()
            value = int(item.args[value_name])
            if src in self.holders and dst not in self.holders:
                net += value
            elif dst in self.holders and src not in self.holders:
                net -= value
        return net

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        block = ctx.block
        self.window.append((block.number, block.timestamp, self._net(ctx)))
        while self.window and not self._inside(self.window[0], block.number, block.timestamp):
            self.expired.append(self.window.popleft())
        outflow = sum(n for _b, _t, n in self.window)
        balances = [ctx.reads.get(c.key) for c in self.balance_calls]
        known = all(isinstance(b, int) and not isinstance(b, ReadFailed) for b in balances)
        balance = sum(int(b) for b in balances if isinstance(b, int))
        start = balance + outflow
        fraction = outflow / start if start > 0 else 0.0
        over_amount = self.cfg.max_outflow is not None and outflow > self.cfg.max_outflow
        # an unreadable balance is no evidence of a drain: judge the amount only
        over_fraction = (
            known and self.cfg.max_fraction is not None and outflow > 0 and fraction > self.cfg.max_fraction
        )
        now = block.number if self.cfg.window_blocks is not None else block.timestamp
        over = over_amount or over_fraction
        since = (self.breach_since if self.breach_since is not None else block.number) if over else None
        if since != self.breach_since:
            self._breach_history.append((block.number, self.breach_since))
            self.breach_since = since
        if since is None or now <= self.quiet_until:
            return []
        self._quiet_history.append((block.number, self.quiet_until))
        self.quiet_until = now + (self.cfg.window_blocks or self.cfg.window_seconds or 0)
        evidence = {
            "token": self.cfg.token,
            "holders": list(self.cfg.holders),
            "outflow": outflow,
            "balance": balance,
            "fraction": round(fraction, 6),
            "window_blocks": self.cfg.window_blocks,
            "window_seconds": self.cfg.window_seconds,
            "first_block": self.window[0][0],
        }
        breach = breach_of(self.monitor_id, ctx.chain_id, self.make.labels, since)
        return [self.make(ctx, evidence=evidence, breach=breach)]

    def rewind(self, to_block: int) -> None:
        """Forget blocks above ``to_block``: their outflow, and the quiet period they started."""
        while self.window and self.window[-1][0] > to_block:
            self.window.pop()
        while self.expired and self.expired[-1][0] > to_block:
            self.expired.pop()  # slid out and orphaned (a reorg deeper than the window)
        while self.expired:
            # older than anything left in the window; the next block slides out what is outside
            self.window.appendleft(self.expired.pop())
        while self._quiet_history and self._quiet_history[-1][0] > to_block:
            self.quiet_until = self._quiet_history.pop()[1]
        while self._breach_history and self._breach_history[-1][0] > to_block:
            self.breach_since = self._breach_history.pop()[1]

    def snapshot(self) -> dict[str, Any]:
        """The window (amounts as decimal strings: they exceed JSON's safe integers), the quiet
        period and the breach in progress."""
        return {
            "window": [[n, t, str(v)] for n, t, v in self.window],
            "quiet_until": self.quiet_until,
            "breach_since": self.breach_since,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.window = deque((int(n), int(t), int(v)) for n, t, v in state.get("window", ()))
        self.quiet_until = state.get("quiet_until", -1)
        since = state.get("breach_since")
        self.breach_since = int(since) if since is not None else None

    def _inside(self, entry: tuple[int, int, int], number: int, timestamp: int) -> bool:
        if self.cfg.window_blocks is not None:
            return entry[0] > number - self.cfg.window_blocks
        return entry[1] > timestamp - (self.cfg.window_seconds or 0)


_ERC20_TRANSFER = {
    "type": "event",
    "name": "Transfer",
    "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False},
    ],
}
