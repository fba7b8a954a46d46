"""Invariants: CEL over contract view calls, evaluated every block with all calls in one round trip.

The three concerns are separate so the mempool simulator can reuse the first two on a simulated
post-state:
1. ``InvariantSet.calls()``: which view calls to read (deduplicated across invariants);
2. ``InvariantSet.evaluate(values, ...)``: pure evaluation of every expression on decoded results;
3. how the calls are executed: any ``reads.CallExecutor`` (``RpcBatchExecutor`` on the block path).
``InvariantSet.check(executor, block)`` composes them.

Expression variables: each call's name (its decoded result), ``block`` (number, timestamp),
``prev`` (the same names' values at the previous evaluation, or the current ones the first time).

On a reorg ``rewind(ancestor)`` restores ``prev`` (and the memo of pure expressions) as it was after
the ancestor, and forgets which invariants broke on the orphaned blocks, so ``prev`` never comes from
a block that left the chain and a breach repeated on the new branch is reported again (its first
finding was retracted). ``prev`` cannot be recomputed without reading the ancestor's state again, so
the values before each of the last ``UNDO_BLOCKS`` evaluations are kept (references, not copies).

A breach keeps one identity while it lasts (``domain.breach_of``: the monitor and the block it began
in), and what the detector needs to know it (which invariants are broken since when, and ``prev``)
survives a restart: ``snapshot()`` is written with the follower's checkpoint, ``restore()`` reads it
back, so a restarted process does not report an ongoing breach as a new one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from breakglass.config.monitors import InvariantMonitor
from breakglass.detect.base import BlockContext, FindingMaker, Interest
from breakglass.detect.expr import Expression, to_cel
from breakglass.detect.reads import CallExecutor, Contracts, ReadCall, ReadFailed, decode_results, parse_call
from breakglass.detect.rewind import UNDO_BLOCKS
from breakglass.domain import Finding, Severity, breach_of
from breakglass.errors import DetectionError
from breakglass.metrics.collect import MonitorClock

__all__ = ["Invariant", "InvariantDetector", "InvariantSet", "Violation"]


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant that did not hold (or could not be evaluated: ``error`` set)."""

    monitor_id: str
    expression: str
    values: Mapping[str, Any]
    error: str | None = None


@dataclass
class Invariant:
    cfg: InvariantMonitor
    calls: dict[str, ReadCall]
    """variable name -> call"""
    expect: Expression
    previous: dict[str, Any] | None = field(default=None)
    _memo: tuple[dict[str, Any], bool, dict[str, Any]] | None = field(default=None)
    """(inputs, result) of the last evaluation, for expressions that depend on nothing else"""
    pure: bool = field(init=False)
    """depends on its call results alone (reads neither ``block`` nor ``prev``)"""
    reads_prev: bool = field(init=False)

    def __post_init__(self) -> None:
        self.pure = not (self.expect.variables & {"block", "prev"})
        self.reads_prev = "prev" in self.expect.variables

    @classmethod
    def build(cls, cfg: InvariantMonitor, contracts: Contracts) -> Invariant:
        calls = {name: parse_call(text, contracts, cfg.id) for name, text in cfg.calls.items()}
        allowed = set(calls) | {"block", "prev"}
        return cls(cfg=cfg, calls=calls, expect=Expression(cfg.expect, cfg.id, allowed=allowed))

    def evaluate(
        self,
        values: Mapping[str, Any],
        block: Mapping[str, Any],
        *,
        remember: bool,
        before: Mapping[str, Any] | None = None,
    ) -> Violation | None:
        """``before``: the reads of the state this one follows, when known better than the last
        remembered block (a simulation on top of the head: the head's own state is its ``prev``)."""
        mine = {name: values.get(call.key) for name, call in self.calls.items()}
        failed = [v for v in mine.values() if isinstance(v, ReadFailed) or v is None]
        if failed:
            reason = failed[0].reason if isinstance(failed[0], ReadFailed) else "no result"
            return Violation(self.cfg.id, self.cfg.expect, {}, error=f"a call failed: {reason}")
        # pure in its call results unless it reads block or prev: quiet blocks skip the evaluation
        pure = self.pure
        if pure and self._memo is not None and self._memo[0] == mine:
            if remember:
                self.previous = self._memo[2]
            return None if self._memo[1] else Violation(self.cfg.id, self.cfg.expect, mine)
        current = {name: to_cel(v) for name, v in mine.items()}
        previous = self.previous
        if before is not None and self.reads_prev:
            theirs = {name: before.get(call.key) for name, call in self.calls.items()}
            if not any(isinstance(v, ReadFailed) or v is None for v in theirs.values()):
                previous = {name: to_cel(v) for name, v in theirs.items()}
        variables = {
            **current,
            "block": block,
            "prev": previous if previous is not None else current,
        }
        try:
            ok = self.expect.holds(variables)
        except DetectionError as exc:
            return Violation(self.cfg.id, self.cfg.expect, mine, error=str(exc))
        if pure and remember:
            self._memo = (mine, ok, current)
        if remember:
            self.previous = current
        return None if ok else Violation(self.cfg.id, self.cfg.expect, mine)


class InvariantSet:
    """All invariants of a configuration; see the module docstring for the three-way split."""

    def __init__(self, invariants: Sequence[Invariant]) -> None:
        self.invariants = list(invariants)
        unique: dict[str, ReadCall] = {}
        for inv in self.invariants:
            for call in inv.calls.values():
                unique.setdefault(call.key, call)
        self._calls = list(unique.values())
        self._history: deque[tuple[int, list[tuple[Any, Any]]]] = deque(maxlen=UNDO_BLOCKS)
        """(block number, every invariant's (previous, memo) before that block's evaluation)"""
        self._last: tuple[Mapping[str, Any], list[Violation | None]] | None = None
        """(values, outcomes) of the last remembered evaluation"""
        self.clock = MonitorClock(inv.cfg.id for inv in self.invariants)
        """Per-invariant evaluation time on the block path (``breakglass_monitor_evaluation_seconds``)."""

    @classmethod
    def build(cls, cfgs: Sequence[InvariantMonitor], contracts: Contracts) -> InvariantSet:
        return cls([Invariant.build(c, contracts) for c in cfgs])

    def calls(self) -> list[ReadCall]:
        return list(self._calls)

    def evaluate(
        self,
        values: Mapping[str, Any],
        *,
        block_number: int,
        timestamp: int,
        remember: bool = True,
        before: Mapping[str, Any] | None = None,
    ) -> list[Violation]:
        """Every invariant on decoded call results (by ``ReadCall.key``). Pure but for ``prev``:
        ``remember=False`` (simulations) leaves the previous-block values untouched, and ``before``
        (a simulation's reads of the state it starts from) is then ``prev``."""
        block = {"number": block_number, "timestamp": timestamp}
        if remember:
            self._history.append((block_number, [(inv.previous, inv._memo) for inv in self.invariants]))
        last = self._last
        if remember and last is not None and last[0] is values:
            # the very reads of the last block (the engine carries them over quiet blocks): a pure
            # invariant's outcome cannot have changed, and evaluating it again leaves it as it is
            out = [
                was if inv.pure else inv.evaluate(values, block, remember=True)
                for inv, was in zip(self.invariants, last[1], strict=True)
            ]
        elif remember:  # the block path: each invariant's time goes to its monitor's metric
            out = []
            seconds, counts, clock = self.clock.seconds, self.clock.counts, time.perf_counter
            for inv in self.invariants:
                started = clock()
                out.append(inv.evaluate(values, block, remember=True))
                seconds[inv.cfg.id] += clock() - started
                counts[inv.cfg.id] += 1
        else:
            out = [inv.evaluate(values, block, remember=False, before=before) for inv in self.invariants]
        if remember:
            self._last = (values, out)
        return [v for v in out if v is not None]

    def rewind(self, to_block: int) -> None:
        """``prev`` and memos as they were after ``to_block`` (the last ``UNDO_BLOCKS`` blocks)."""
        restored: list[tuple[Any, Any]] | None = None
        while self._history and self._history[-1][0] > to_block:
            restored = self._history.pop()[1]
        if restored is not None:
            for inv, (previous, memo) in zip(self.invariants, restored, strict=True):
                inv.previous, inv._memo = previous, memo
            self._last = None

    async def check(
        self,
        executor: CallExecutor,
        block: int | str,
        *,
        block_number: int,
        timestamp: int,
        remember: bool = True,
    ) -> list[Violation]:
        raw = await executor.execute(self._calls, block)
        values = decode_results(self._calls, raw)
        return self.evaluate(values, block_number=block_number, timestamp=timestamp, remember=remember)


class InvariantDetector:
    """The block-path adapter: evaluates the set on the reads the engine did, makes findings."""

    monitor_id = "invariants"
    interest = Interest(
        state=True, other_logs=False
    )  # on_block finds nothing in a block whose state was not read

    def __init__(self, invariants: InvariantSet) -> None:
        self.set = invariants
        self._makers = {
            inv.cfg.id: FindingMaker(
                inv.cfg.id,
                inv.cfg.severity,
                inv.cfg.title or f"invariant broken: {inv.cfg.expect}",
                inv.cfg.labels,
            )
            for inv in invariants.invariants
        }
        self._failing: dict[str, str] = {}
        """monitor id -> the breach it is in (``domain.breach_of``), for every invariant now broken"""
        self._failing_history: deque[tuple[int, dict[str, str]]] = deque(maxlen=UNDO_BLOCKS)
        """(block that changed ``_failing``, its value before)"""

    def reads(self) -> Sequence[ReadCall]:
        return self.set.calls()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        if not ctx.state_read:
            return []  # an old block of a backfill: its state is not read (engine.state_horizon)
        violations = self.set.evaluate(
            ctx.reads, block_number=ctx.block.number, timestamp=ctx.block.timestamp
        )
        out: list[Finding] = []
        now_failing: dict[str, str] = {}
        for v in violations:
            breach = self._failing.get(v.monitor_id)
            if breach is not None:
                now_failing[v.monitor_id] = breach
                continue  # one finding when it breaks, not one per block while it stays broken
            make = self._makers[v.monitor_id]
            breach = now_failing[v.monitor_id] = breach_of(
                v.monitor_id, ctx.chain_id, make.labels, ctx.block.number
            )
            evidence = {"expect": v.expression, "values": {k: _plain(x) for k, x in v.values.items()}}
            if v.error:
                evidence["error"] = v.error
            severity = Severity.MEDIUM if v.error and make.severity > Severity.MEDIUM else None
            title = f"invariant could not be evaluated: {v.error}" if v.error else None
            out.append(make(ctx, evidence=evidence, severity=severity, title=title, breach=breach))
        if now_failing != self._failing:
            self._failing_history.append((ctx.block.number, self._failing))
        self._failing = now_failing
        return out

    def rewind(self, to_block: int) -> None:
        """Forget ``prev`` values and breaches of blocks above ``to_block``: a breach that is still
        there on the new branch is a new finding (the orphaned one was retracted)."""
        self.set.rewind(to_block)
        while self._failing_history and self._failing_history[-1][0] > to_block:
            self._failing = self._failing_history.pop()[1]

    def snapshot(self) -> dict[str, Any]:
        """What a restart needs: the breaches in progress and every invariant's ``prev`` (JSON)."""
        return {
            "failing": dict(self._failing),
            "prev": {inv.cfg.id: inv.previous for inv in self.set.invariants if inv.previous is not None},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``snapshot``; invariants no longer configured are ignored."""
        known = {inv.cfg.id: inv for inv in self.set.invariants}
        failing = state.get("failing") or {}
        self._failing = {m: str(b) for m, b in failing.items() if m in known}
        for monitor, previous in (state.get("prev") or {}).items():
            if monitor in known and isinstance(previous, dict):
                known[monitor].previous = previous


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
