"""The embedded bus: asyncio queues in one process. The default for one machine and for tests."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["InProcessBus"]

_CLOSED = object()


class InProcessBus:
    """Topics fan out to durable subscriptions; a durable name shared by workers is a queue group."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self._maxsize = maxsize
        self._queues: dict[str, dict[str, asyncio.Queue[Any]]] = defaultdict(dict)
        self._closed = False

    def _queue(self, topic: str, durable: str) -> asyncio.Queue[Any]:
        queues = self._queues[topic]
        if durable not in queues:
            queues[durable] = asyncio.Queue(self._maxsize)
        return queues[durable]

    async def publish(self, topic: str, message: Any) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        for queue in list(self._queues[topic].values()):
            await queue.put(message)

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        queue = self._queue(topic, durable)  # registered now, so nothing published after is missed

        async def messages() -> AsyncIterator[Any]:
            while True:
                message = await queue.get()
                if message is _CLOSED:
                    queue.put_nowait(_CLOSED)  # wake the other workers of this queue group too
                    return
                yield message

        return messages()

    async def close(self) -> None:
        self._closed = True
        for queues in self._queues.values():
            for queue in queues.values():
                queue.put_nowait(_CLOSED)
