"""The embedded bus: asyncio queues in one process. The default for one machine and for tests.

Its queues die with the process, so a message is durable only once its consumers handled it:
``settled(topic)`` waits for that (a message counts as handled when its worker asks for the next one,
as JetStream acknowledges), and the follower waits for it before it checkpoints a block, so a crash
re-delivers the block rather than losing its findings.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator
from typing import Any

from breakglass.bus.base import DEDUP_MEMORY
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


class _Durable:
    """One durable subscription's queue, and how many of its messages were taken and handled."""

    __slots__ = ("changed", "handled", "published", "queue")

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.published = 0
        self.handled = 0
        self.changed = asyncio.Event()


class _Mark:
    """What ``settled`` returns: an awaitable holding the counts to reach. No coroutine exists until
    it is awaited, so a mark dropped unawaited (a cancelled checkpoint write) warns of nothing."""

    __slots__ = ("_bus", "_marks")

    def __init__(self, bus: InProcessBus, marks: list[tuple[_Durable, int]]) -> None:
        self._bus = bus
        self._marks = marks

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        for durable, mark in self._marks:
            while durable.handled < mark and not self._bus._closed:
                durable.changed.clear()
                await durable.changed.wait()


class InProcessBus:
    """Topics fan out to durable subscriptions and listeners; a durable name shared by workers is a
    queue group. Durable queues hold up to ``maxsize`` messages (publishers wait beyond that);
    listener queues hold ``listener_buffer`` and then drop their oldest message (counted in
    :attr:`listener_drops`)."""

    def __init__(self, maxsize: int = 100_000, *, listener_buffer: int = 10_000) -> None:
        self._maxsize = maxsize
        self._listener_buffer = listener_buffer
        self._queues: dict[str, dict[str, _Durable]] = defaultdict(dict)
        # Weak: a listener dropped without ever being iterated (so its ``finally`` never runs) must
        # not stay registered and keep receiving copies.
        self._listeners: dict[str, weakref.WeakSet[_Inbox]] = defaultdict(weakref.WeakSet)
        self._closed = False
        self._published: OrderedDict[tuple[str, str], None] = OrderedDict()
        """(topic, dedup) of the last ``DEDUP_MEMORY`` named messages"""
        self.listener_drops = 0
        """Messages listeners lost because they were ``listener_buffer`` behind, since the start."""

    def _queue(self, topic: str, durable: str) -> _Durable:
        queues = self._queues[topic]
        if durable not in queues:
            queues[durable] = _Durable(self._maxsize)
        return queues[durable]

    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        if self._closed:
            raise RuntimeError("bus is closed")
        if dedup is not None:
            if (topic, dedup) in self._published:
                return
            self._published[(topic, dedup)] = None
            if len(self._published) > DEDUP_MEMORY:
                self._published.popitem(last=False)
        for inbox in list(self._listeners.get(topic, ())):
            if not inbox.offer(message):
                self.listener_drops += 1
                if inbox.dropped == 1:  # once per listener: the counter says how many since
                    log.warning("bus listener too slow, dropping its oldest messages", topic=topic)
        for durable in list(self._queues[topic].values()):
            durable.published += 1
            await durable.queue.put(message)

    def settled(self, topic: str) -> Awaitable[None]:
        """Waits until every durable subscription of ``topic`` handled what was published before
        this call (its worker came back for the next message); at once when the bus is closed."""
        return _Mark(self, [(d, d.published) for d in self._queues.get(topic, {}).values()])

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        entry = self._queue(topic, durable)  # registered now, so nothing published after is missed

        async def messages() -> AsyncIterator[Any]:
            while True:
                message = await entry.queue.get()
                if message is _CLOSED:
                    entry.queue.put_nowait(_CLOSED)  # wake the other workers of this queue group too
                    return
                yield message
                entry.handled += 1  # the worker is back for more: it handled this one
                entry.changed.set()

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

    async def lag(self) -> dict[tuple[str, str], int]:
        """Messages waiting per (topic, durable subscription): ``breakglass_bus_consumer_lag_messages``."""
        return {(topic, name): durable.published - durable.handled for topic, queues in self._queues.items()
                for name, durable in queues.items()}  # fmt: skip

    async def close(self) -> None:
        self._closed = True
        for queues in self._queues.values():
            for durable in queues.values():
                durable.queue.put_nowait(_CLOSED)
                durable.changed.set()
        for inboxes in self._listeners.values():
            for inbox in list(inboxes):
                inbox.offer(_CLOSED)  # after what it holds (at the cost of the oldest when full)
