"""Optimistic guardian: an automatic pause opens a ratification task that governance must close in time.

When a call action with ``ratify`` is confirmed, a task is recorded (``ratification_opened``) with a
deadline = inclusion block timestamp + ``within``. ``poll()`` watches the chain: the configured view
(``pauseRatified()``, or output 1 of ``marketPause(id)``) turning true records ``ratified``; the
chain's clock passing the deadline first records ``lapsed``. Open tasks are rebuilt from the ledger
after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import decode

from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.respond.ledger import Ledger
from breakglass.respond.rpc import Rpc

__all__ = ["RatificationTask", "RatificationWatcher"]

Emit = Callable[[ActionEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RatificationTask:
    event: ActionEvent
    check: Mapping[str, Any]
    """``to``, ``data`` (the view call), ``outputs`` (its ABI types), ``index`` (the boolean), ``view``."""
    deadline: int
    """Unix seconds, on the chain's clock."""


class RatificationWatcher:
    def __init__(self, rpc: Rpc, ledger: Ledger, emit: Emit | None = None) -> None:
        self._rpc = rpc
        self._ledger = ledger
        self._emit = emit
        self._open: dict[str, RatificationTask] = {}

    @property
    def open_tasks(self) -> list[RatificationTask]:
        return list(self._open.values())

    async def open(self, confirmed: ActionEvent, check: Mapping[str, Any]) -> RatificationTask:
        """Record a task for ``confirmed`` (a CONFIRMED event carrying ``detail.block_number``)."""
        block = await self._rpc.call(
            "eth_getBlockByNumber", hex(int(confirmed.detail["block_number"])), False
        )
        deadline = int(block["timestamp"], 16) + int(check["within"])
        event = replace(
            confirmed,
            step=ActionStep.RATIFICATION_OPENED,
            at_ms=time.time() * 1000,
            detail={
                "ratify": dict(check),
                "view": check["view"],
                "deadline": deadline,
                "within": check["within"],
            },
        )
        task = RatificationTask(event, dict(check), deadline)
        self._open[confirmed.key] = task
        await self._record(event)
        return task

    async def recover(self) -> None:
        """Rebuild open tasks from the ledger: opened and not yet ratified or lapsed."""
        closed = {r.key for r in await self._ledger.rows(steps=(ActionStep.RATIFIED, ActionStep.LAPSED))}
        for row in await self._ledger.rows(steps=(ActionStep.RATIFICATION_OPENED,)):
            if row.key not in closed:
                d = row.detail
                self._open[row.key] = RatificationTask(row.event(), dict(d["ratify"]), int(d["deadline"]))

    async def poll(self) -> list[ActionEvent]:
        """Check every open task once against the latest block. Returns the closing events."""
        if not self._open:
            return []
        block = await self._rpc.call("eth_getBlockByNumber", "latest", False)
        now = int(block["timestamp"], 16)
        closed: list[ActionEvent] = []
        for key, task in list(self._open.items()):
            check = task.check
            raw = await self._rpc.call("eth_call", {"to": check["to"], "data": check["data"]}, block["hash"])
            values = decode(list(check["outputs"]), bytes.fromhex(raw[2:]))
            ratified = bool(values[int(check["index"])])
            if ratified or now > task.deadline:
                step = ActionStep.RATIFIED if ratified else ActionStep.LAPSED
                event = replace(
                    task.event,
                    step=step,
                    at_ms=time.time() * 1000,
                    detail={**task.event.detail, "block_number": int(block["number"], 16), "chain_time": now},
                )
                del self._open[key]
                await self._record(event)
                closed.append(event)
        return closed

    async def _record(self, event: ActionEvent) -> None:
        await self._ledger.append(event)
        if self._emit is not None:
            await self._emit(event)
