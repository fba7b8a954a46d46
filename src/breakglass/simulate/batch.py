"""Coalescing JSON-RPC requests of concurrent judgements into batches: one HTTP round trip for many.

Under a burst of pending transactions, one request per transaction costs more in HTTP overhead (and
connection-pool bookkeeping) than the node spends simulating. Each caller hands over its group of
calls; whatever is queued when a sender is free goes out as one batch, so an idle simulator adds no
delay and a busy one sends fewer, larger requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

from breakglass.chain.rpc import Call, RpcClient

__all__ = ["RpcBatcher"]


class RpcBatcher:
    """``await batcher.batch(calls)`` answers like ``RpcClient.batch(calls, strict=False)``."""

    def __init__(self, rpc: RpcClient, *, max_calls: int = 200, senders: int = 4) -> None:
        self.rpc = rpc
        self.max_calls = max_calls
        self.senders = senders
        self.round_trips = 0
        self._queue: deque[tuple[list[Call], asyncio.Future[list[Any]]]] = deque()
        self._running = 0

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((list(calls), future))
        if self._running < self.senders:
            self._running += 1
            asyncio.get_running_loop().create_task(self._send())
        return await future

    async def _send(self) -> None:
        try:
            while self._queue:
                groups: list[tuple[list[Call], asyncio.Future[list[Any]]]] = []
                size = 0
                while self._queue and (not groups or size + len(self._queue[0][0]) <= self.max_calls):
                    calls, future = self._queue.popleft()
                    groups.append((calls, future))
                    size += len(calls)
                self.round_trips += 1
                try:
                    answers = await self.rpc.batch([c for calls, _f in groups for c in calls], strict=False)
                except Exception as exc:  # every endpoint failed: each caller gets the error
                    for _calls, future in groups:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                offset = 0
                for calls, future in groups:
                    if not future.done():
                        future.set_result(answers[offset : offset + len(calls)])
                    offset += len(calls)
        finally:
            self._running -= 1
