"""The embedded bus: asyncio queues in one process. The default for one machine and for tests."""

from __future__ import annotations

import asyncio
import weakref
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from breakglass.logs import get_logger

__all__ = ["InProcessBus"]

log = get_logger(__name__)

_CLOSED = object()


class _Inbox:
    """One listener's bounded queue. When it is full the oldest message gives way: a listener that
    falls behind loses messages, publishers never wait for it."""

    __slots__ = ("__weakref__", "dropped", "queue", "topic")

    def __init__(self, topic: str, maxsize: int) -> None:
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, message: Any) -> bool:
        """Queue ``message``; False when that pushed the oldest one out."""
        full = self.queue.full()
        if full:
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)
        return not full


class InProcessBus:
    """Topics fan out to durable subscriptions and listeners; a durable name shared by workers is a
    queue group. Durable queues hold up to ``maxsize`` messages (publishers wait beyond that);
    listener queues hold ``listener_buffer`` and then drop their oldest message (counted in
    :attr:`listener_drops`)."""

    def __init__(self, maxsize: int = 100_000, *, listener_buffer: int = 10_000) -> None:
        self._maxsize = maxsize
        self._listener_buffer = listener_buffer
        self._queues: dict[str, dict[str, asyncio.Queue[Any]]] = defaultdict(dict)
        # Weak: a listener dropped without ever being iterated (so its ``finally`` never runs) must
        # not stay registered and keep receiving copies.
        self._listeners: dict[str, weakref.WeakSet[_Inbox]] = defaultdict(weakref.WeakSet)
        self._closed = False
        self.listener_drops = 0
        """Messages listeners lost because they were ``listener_buffer`` behind, since the start."""

    def _queue(self, topic: str, durable: str) -> asyncio.Queue[Any]:
        queues = self._queues[topic]
        if durable not in queues:
            queues[durable] = asyncio.Queue(self._maxsize)
        return queues[durable]

    async def publish(self, topic: str, message: Any) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        for inbox in list(self._listeners.get(topic, ())):
            if not inbox.offer(message):
                self.listener_drops += 1
                if inbox.dropped == 1:  # once per listener: the counter says how many since
                    log.warning("bus listener too slow, dropping its oldest messages", topic=topic)
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

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        inbox = _Inbox(topic, self._listener_buffer)
        if self._closed:
            inbox.offer(_CLOSED)
        else:
            self._listeners[topic].add(inbox)  # registered now, so nothing published after is missed
        return self._drain(inbox)

    async def _drain(self, inbox: _Inbox) -> AsyncGenerator[Any, None]:
        try:
            while True:
                message = await inbox.queue.get()
                if message is _CLOSED:
                    return
                yield message
        finally:
            self._listeners[inbox.topic].discard(inbox)

    def listening(self, topic: str) -> int:
        """How many listeners ``topic`` has now."""
        return len(self._listeners[topic])

    async def close(self) -> None:
        self._closed = True
        for queues in self._queues.values():
            for queue in queues.values():
                queue.put_nowait(_CLOSED)
        for inboxes in self._listeners.values():
            for inbox in list(inboxes):
                inbox.offer(_CLOSED)  # after what it holds (at the cost of the oldest when full)
