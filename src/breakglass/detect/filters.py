"""Event, function-call and transaction filters: a match plus an optional CEL ``where``.

A transaction filter may also read ``logs``: the transaction's logs of configured contracts, decoded
(``{contract, event, args, address, index}`` each), to say what happened inside it, e.g. a deposit
and a redemption in one transaction. The list is built only for monitors whose expression reads it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from breakglass.config.monitors import CallMonitor, EventMonitor, TransactionMonitor
from breakglass.detect.abi import EventAbi, FunctionAbi
from breakglass.detect.base import BlockContext, DecodedLog, FindingMaker, Interest, jsonable
from breakglass.detect.expr import Expression, to_cel
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding

__all__ = ["CallDetector", "EventDetector", "TransactionDetector"]

EVENT_VARS = {"args", "log", "tx", "block", "contracts"}
CALL_VARS = {"args", "tx", "block", "contracts"}
TX_VARS = {"tx", "block", "contracts", "logs"}


def _log_vars(item: DecodedLog) -> dict[str, Any]:
    return {
        "contract": item.contract,
        "event": item.event.name,
        "args": to_cel(item.args),
        "address": item.log.address.lower(),
        "index": item.log.log_index,
    }


class _LogsByTx:
    """``logs`` of each transaction of one block, built once per block however many monitors read it
    (the last block's context is held weakly: a new context replaces it)."""

    def __init__(self) -> None:
        self._ctx: weakref.ref[BlockContext] | None = None
        self._by_tx: dict[str, list[DecodedLog]] = {}
        self._vars: dict[str, list[dict[str, Any]]] = {}

    def of(self, ctx: BlockContext, tx_hash: str) -> list[dict[str, Any]]:
        if self._ctx is None or self._ctx() is not ctx:
            self._ctx = weakref.ref(ctx)
            self._by_tx, self._vars = {}, {}
            for item in ctx.logs:
                self._by_tx.setdefault(item.tx.hash, []).append(item)
        found = self._vars.get(tx_hash)
        if found is None:
            found = self._vars[tx_hash] = [_log_vars(item) for item in self._by_tx.get(tx_hash, ())]
        return found


_LOGS = _LogsByTx()


class EventDetector:
    stateless = True  # judged by the backfill worker process beyond the state horizon (offload.py)

    def __init__(self, cfg: EventMonitor, address: str, event: EventAbi) -> None:
        self.monitor_id = cfg.id
        self.address = address.lower()
        self.event = event
        self.interest = Interest(logs=frozenset({(self.address, event.topic0)}), other_logs=False)
        self.where = Expression(cfg.where, cfg.id, allowed=EVENT_VARS) if cfg.where else None
        self._args_only = self.where is not None and self.where.variables <= {"args"}
        """the expression reads the event's arguments alone (``args.amount > 0``): only those are
        handed to it, not the block's, transaction's and log's variables it would never look at"""
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or f"{cfg.contract}.{event.name}", cfg.labels
        )
        self.contract = cfg.contract

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        topic0, address, where = self.event.topic0, self.address, self.where
        for item in ctx.logs:
            if item.event.topic0 != topic0 or item.log.address.lower() != address:
                continue
            if where is not None:
                verdict = where.decide(item.args)  # args.amount > 0: decided on the decoded value
                if verdict is None:
                    if self._args_only:
                        variables = {"args": ctx.cel_args(item.args)}
                    else:
                        log = {"address": address, "index": item.log.log_index, "contract": self.contract}
                        variables = ctx.variables(item.tx, item.args, log=log)
                    verdict = where.holds(variables)
                if not verdict:
                    continue
            evidence = {"event": self.event.name, "contract": self.contract, "args": ctx.plain(item.args)}
            out.append(self.make(ctx, tx=item.tx, log=item.log, evidence=evidence))
        return out


class CallDetector:
    stateless = True  # judged by the backfill worker process beyond the state horizon (offload.py)

    def __init__(self, cfg: CallMonitor, address: str, function: FunctionAbi) -> None:
        self.monitor_id = cfg.id
        self.address = address.lower()
        self.function = function
        self.interest = Interest(transactions=True, other_logs=False)
        self.include_reverted = cfg.include_reverted
        self.where = Expression(cfg.where, cfg.id, allowed=CALL_VARS) if cfg.where else None
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or f"{cfg.contract}.{function.name}()", cfg.labels
        )
        self.contract = cfg.contract

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        for tx in ctx.block.transactions:
            if tx.to is None or tx.to.lower() != self.address or tx.input[:4] != self.function.selector:
                continue
            if not self.include_reverted and tx.receipt is not None and tx.receipt.status == 0:
                continue
            args = self.function.decode_input(tx.input)
            if args is None:
                continue
            if self.where is not None and not self.where.holds(ctx.variables(tx, args)):
                continue
            evidence = {"function": self.function.name, "contract": self.contract, "args": jsonable(args)}
            out.append(self.make(ctx, tx=tx, evidence=evidence))
        return out


class TransactionDetector:
    stateless = True  # judged by the backfill worker process beyond the state horizon (offload.py)

    def __init__(self, cfg: TransactionMonitor, to: list[str]) -> None:
        self.monitor_id = cfg.id
        self.to = {a.lower() for a in to}
        self.where = Expression(cfg.where, cfg.id, allowed=TX_VARS)
        self.reads_logs = "logs" in self.where.variables
        self.interest = Interest(transactions=True, other_logs=self.reads_logs)
        # An expression of the logs alone gives one answer for every transaction without protocol logs
        # (most of a block's): evaluated once, not per transaction.
        self._logs_only = self.reads_logs and self.where.variables <= {"logs", "contracts"}
        self._without_logs: bool | None = None
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or f"transaction matching {cfg.where}", cfg.labels
        )

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        for tx in ctx.block.transactions:
            if self.to and (tx.to is None or tx.to.lower() not in self.to):
                continue
            if self.reads_logs:
                logs = _LOGS.of(ctx, tx.hash)
                if not logs and self._logs_only:
                    if self._without_logs is None:
                        self._without_logs = self.where.holds(ctx.variables(tx, logs=logs))
                    matched = self._without_logs
                else:
                    matched = self.where.holds(ctx.variables(tx, logs=logs))
            else:
                matched = self.where.holds(ctx.variables(tx))
            if matched:
                evidence: dict[str, Any] = {
                    "from": tx.sender,
                    "to": tx.to,
                    "value": tx.value,
                    "selector": "0x" + tx.selector.hex(),
                }
                if self.reads_logs:
                    evidence["logs"] = [f"{entry['contract']}.{entry['event']}" for entry in logs]
                out.append(self.make(ctx, tx=tx, evidence=evidence))
        return out
