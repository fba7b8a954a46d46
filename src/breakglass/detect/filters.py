"""Event, function-call and transaction filters: a match plus an optional CEL ``where``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from breakglass.config.monitors import CallMonitor, EventMonitor, TransactionMonitor
from breakglass.detect.abi import EventAbi, FunctionAbi
from breakglass.detect.base import BlockContext, FindingMaker
from breakglass.detect.expr import Expression
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding

__all__ = ["CallDetector", "EventDetector", "TransactionDetector"]

EVENT_VARS = {"args", "log", "tx", "block", "contracts"}
CALL_VARS = {"args", "tx", "block", "contracts"}
TX_VARS = {"tx", "block", "contracts"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class EventDetector:
    def __init__(self, cfg: EventMonitor, address: str, event: EventAbi) -> None:
        self.monitor_id = cfg.id
        self.address = address.lower()
        self.event = event
        self.where = Expression(cfg.where, cfg.id, allowed=EVENT_VARS) if cfg.where else None
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or f"{cfg.contract}.{event.name}", cfg.labels
        )
        self.contract = cfg.contract

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        for item in ctx.logs:
            if item.event.topic0 != self.event.topic0 or item.log.address.lower() != self.address:
                continue
            if self.where is not None:
                log_vars = {
                    "address": self.address,
                    "index": float(item.log.log_index),
                    "contract": self.contract,
                }
                if not self.where.holds(ctx.variables(item.tx, item.args, log=log_vars)):
                    continue
            evidence = {
                "event": self.event.name,
                "contract": self.contract,
                "args": _jsonable(dict(item.args)),
            }
            out.append(self.make(ctx, tx=item.tx, log=item.log, evidence=evidence))
        return out


class CallDetector:
    def __init__(self, cfg: CallMonitor, address: str, function: FunctionAbi) -> None:
        self.monitor_id = cfg.id
        self.address = address.lower()
        self.function = function
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
            evidence = {"function": self.function.name, "contract": self.contract, "args": _jsonable(args)}
            out.append(self.make(ctx, tx=tx, evidence=evidence))
        return out


class TransactionDetector:
    def __init__(self, cfg: TransactionMonitor, to: list[str]) -> None:
        self.monitor_id = cfg.id
        self.to = {a.lower() for a in to}
        self.where = Expression(cfg.where, cfg.id, allowed=TX_VARS)
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
            if self.where.holds(ctx.variables(tx)):
                evidence = {
                    "from": tx.sender,
                    "to": tx.to,
                    "value": tx.value,
                    "selector": "0x" + tx.selector.hex(),
                }
                out.append(self.make(ctx, tx=tx, evidence=evidence))
        return out
