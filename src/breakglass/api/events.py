"""Live events for the API and dashboard: bus topics fanned out to server-sent-event clients.

The hub holds one bus listener per topic (``Bus.listen``: fan-out, nothing stored for it, gone when
the hub closes, so every API process sees every event and a restart leaves nothing behind on the bus)
however many browsers are connected, and copies each message into a bounded queue per client. A
client that falls ``client_buffer`` messages behind is disconnected rather than allowed to grow
memory without bound; ``EventSource`` reconnects by itself, and the pages reload their data from the
REST API on reconnect, so nothing is lost for the reader, only skipped on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import date, datetime
from typing import Any

import msgspec

from breakglass.bus import Bus, Topics
from breakglass.logs import Redactor, get_logger

__all__ = ["LIVE_TOPICS", "EventHub", "LiveEvent", "jsonable", "sse_frame"]

log = get_logger(__name__)

LIVE_TOPICS = (Topics.ALERTS, Topics.INCIDENTS, Topics.ACTIONS, Topics.TIMELINE, Topics.FINDINGS)
_GONE = None  # queued to a client that must stop (lagging, or the hub closed)


def jsonable(value: Any) -> Any:
    """Plain JSON data for any domain object the bus carries: dataclasses, structs, enums, bytes, mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, msgspec.Struct):  # the chain data of ``breakglass.domain``
        return {name: jsonable(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, int) else str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class LiveEvent:
    id: int
    topic: str
    data: str
    """JSON text, already redacted."""


def sse_frame(event: LiveEvent) -> str:
    lines = [f"id: {event.id}", f"event: {event.topic}"]
    lines += [f"data: {line}" for line in event.data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


class EventHub:
    """Fan bus topics out to any number of live clients; start with :meth:`run`, stop with :meth:`close`."""

    def __init__(
        self,
        bus: Bus,
        redactor: Redactor,
        *,
        topics: tuple[str, ...] = LIVE_TOPICS,
        client_buffer: int = 1000,
    ) -> None:
        self._bus = bus
        self._redactor = redactor
        self._topics = topics
        self._buffer = client_buffer
        self._clients: set[asyncio.Queue[LiveEvent | None]] = set()
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    RELISTEN_BACKOFF = 0.1
    """Seconds before a failed listener is replaced (doubling to 5 s while it keeps failing)."""

    @property
    def clients(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        """Listen now (so nothing published from here on is missed) and pump in the background."""
        for topic in self._topics:
            messages = self._bus.listen(topic)
            self._tasks.append(asyncio.create_task(self._pump(topic, messages), name=f"sse-{topic}"))

    async def _pump(self, topic: str, messages: AsyncGenerator[Any, None]) -> None:
        """Relay ``topic`` to the clients until the bus closes. A listener that fails (a nats-py
        error, a flush timing out on a busy loop) is logged and replaced after a backoff: the live
        view loses what was published meanwhile (listeners are at most once), never the topic."""
        delay = self.RELISTEN_BACKOFF
        while True:
            try:
                async with contextlib.aclosing(messages):  # closing removes the listener from the bus
                    async for message in messages:
                        delay = self.RELISTEN_BACKOFF
                        try:
                            data = self._redactor.text(json.dumps(jsonable(message), separators=(",", ":")))
                        except (TypeError, ValueError) as exc:  # one odd message must not stop the view
                            log.warning("live event not serialisable", topic=topic, error=str(exc))
                            continue
                        self.broadcast(LiveEvent(next(self._ids), topic, data))
                return  # the bus closed
            except Exception as exc:
                log.error("live.listener_failed", topic=topic, error=type(exc).__name__, relisten_in=delay,
                          exc_info=True)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                messages = self._bus.listen(topic)

    def broadcast(self, event: LiveEvent) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("live client too slow, disconnecting", buffered=queue.qsize())
                self._clients.discard(queue)
                self._drop(queue)

    @staticmethod
    def _drop(queue: asyncio.Queue[LiveEvent | None]) -> None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_GONE)

    async def stream(self, *, heartbeat: float = 15.0) -> AsyncIterator[str]:
        """SSE text for one client: a greeting, then events, with comment heartbeats when idle.

        The heartbeat keeps proxies from closing an idle stream and lets the server notice a
        client that went away."""
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(self._buffer)
        self._clients.add(queue)
        try:
            yield "retry: 2000\n: connected\n\n"
            while True:
                try:
                    async with asyncio.timeout(heartbeat):  # not wait_for: on 3.11 it can drop a cancel
                        event = await queue.get()
                except TimeoutError:
                    yield ": ping\n\n"
                    continue
                if event is _GONE:
                    return
                yield sse_frame(event)
        finally:
            self._clients.discard(queue)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for queue in list(self._clients):
            self._drop(queue)
        self._clients.clear()
