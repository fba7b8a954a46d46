"""The bus across machines: NATS JetStream durable streams with the same Protocol as the in-process bus.

One stream (``<prefix>``) holds every topic as subject ``<prefix>.<topic>``. A subscription is a
durable pull consumer named after (topic, durable): workers sharing a durable name share the messages
(a queue group), and a restarted worker resumes where its group left off. A message is acknowledged
when the worker asks for the next one, i.e. after it handled it: delivery is at least once, and a
worker that dies mid-message gets it redelivered (after ``ack_wait``) to another. A worker that is
alive but slow (retrying a message while the store is down) tells the server it is still working on
the messages it holds (``in_progress`` every third of ``ack_wait``), so they are not redelivered to
be handled twice. ``ack_wait`` is 10 s: what a killed process had taken comes back that long after it
was delivered (the fault soak measured alerts up to 38 s late with 30 s). A durable keeps the
``ack_wait`` it was created with.

A subscription that fails otherwise (the connection closed, a JetStream API error) raises out of its
iteration, after unsubscribing; the stage's ``Consumer`` (``bus/consumer.py``) logs it and subscribes
again, resuming where the group left off. Messages it held unacknowledged are redelivered after
``ack_wait``.

A listener is a plain core-NATS subscription on the topic's subject, not a JetStream consumer: the
server keeps nothing for it, and it ends with its ``unsubscribe``, its connection or its process. It
hears what is published once the server has it (its first iteration subscribes and flushes), and
loses what is published while the connection is re-established. nats-py buffers ``listener_buffer``
messages for a listener that does not read, then drops new ones (reported as a slow consumer).
(An ordered consumer would bridge reconnects, but nats-py 2.16 recreates it from stream sequence 1
when it resets before its first message, replaying the whole stream, and cannot recreate one that
started at a time.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from breakglass.bus.cancel import raise_if_cancelling
from breakglass.bus.codec import CodecError, decode, encode
from breakglass.errors import BreakglassError
from breakglass.logs import get_logger

__all__ = ["JetStreamBus"]

log = get_logger(__name__)


class _Done:
    """An awaitable that is already done (``settled`` on a bus that stores what it was given)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that yields nothing: awaiting it returns at once


_DONE = _Done()


class JetStreamBus:
    """Construct, then ``await connect()``; ``close()`` drains the connection."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "breakglass",
        ack_wait: float = 10.0,
        max_age: float = 7 * 24 * 3600,
        fetch_batch: int = 64,
        listener_buffer: int = 10_000,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._ack_wait = ack_wait
        self._max_age = max_age
        self._fetch_batch = fetch_batch
        self._listener_buffer = listener_buffer
        self._listeners: dict[str, set[Subscription]] = defaultdict(set)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._consumers: dict[tuple[str, str], str] = {}
        """(topic, durable) -> JetStream consumer name, for ``lag``"""

    async def connect(self) -> JetStreamBus:
        try:
            self._nc = await nats.connect(self._url, connect_timeout=5, max_reconnect_attempts=-1)
        except (OSError, NatsTimeout) as exc:
            raise BreakglassError(f"cannot reach NATS at {self._url}: {exc}", recoverable=True) from exc
        self._js = self._nc.jetstream()
        config = StreamConfig(name=self._prefix, subjects=[f"{self._prefix}.>"], max_age=self._max_age)
        try:
            await self._js.stream_info(self._prefix)
            await self._js.update_stream(config)
        except NotFoundError:
            await self._js.add_stream(config)
        return self

    @property
    def prefix(self) -> str:
        return self._prefix

    def connection(self) -> tuple[Client, JetStreamContext]:
        """The connection and its JetStream context, for a work queue beside the stream
        (``bus/workqueue.py``); raises when not connected."""
        return self._client(), self._context()

    def _client(self) -> Client:
        if self._nc is None:
            raise BreakglassError("JetStreamBus is not connected: await connect() first")
        return self._nc

    def _context(self) -> JetStreamContext:
        if self._js is None:
            raise BreakglassError("JetStreamBus is not connected: await connect() first")
        return self._js

    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        # The server drops a message whose Nats-Msg-Id it stored within the stream's duplicate window
        headers = {"Nats-Msg-Id": f"{topic}:{dedup}"} if dedup is not None else None
        await self._context().publish(f"{self._prefix}.{topic}", encode(message), headers=headers)

    def settled(self, topic: str) -> Awaitable[None]:
        """At once: ``publish`` returned after the server acknowledged storing the message (its
        PubAck), and durable consumers resume from the stream after any crash."""
        return _DONE

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        js = self._context()
        subject = f"{self._prefix}.{topic}"
        name = f"{durable}-{topic}".replace(".", "_")
        self._consumers[(topic, durable)] = name
        # "From now on" means from this call, not from when the consumer is first pulled: a new
        # durable starts at this instant; an existing one resumes where its group left off.
        since = datetime.now(UTC)
        config = ConsumerConfig(
            durable_name=name,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            filter_subject=subject,
        )

        async def messages() -> AsyncIterator[Any]:
            sub = await js.pull_subscribe(subject, durable=name, stream=self._prefix, config=config)
            try:
                while True:
                    try:
                        batch = await sub.fetch(self._fetch_batch, timeout=1.0)
                    except TimeoutError as exc:  # nothing came within the second; nats-py raises its own
                        raise_if_cancelling(exc)  # TimeoutError, or asyncio's when the event loop was busy
                        continue
                    held = list(batch)
                    keepalive = asyncio.create_task(self._in_progress(held))
                    try:
                        while held:
                            msg = held[0]
                            yield decode(msg.data)
                            held.pop(0)
                            await msg.ack()  # the worker came back for more: it handled this one
                    finally:
                        keepalive.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await keepalive
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return messages()

    async def _in_progress(self, held: list[Any]) -> None:
        """While this worker holds messages, keep telling the server it is working on them."""
        while True:
            await asyncio.sleep(self._ack_wait / 3)
            for msg in list(held):
                with contextlib.suppress(NatsError):
                    await msg.in_progress()

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        self._context()  # fail now, like subscribe, when not connected
        subject = f"{self._prefix}.{topic}"

        async def messages() -> AsyncGenerator[Any, None]:
            nc = self._client()
            sub = await nc.subscribe(subject, pending_msgs_limit=self._listener_buffer)
            listeners = self._listeners[topic]
            try:
                await nc.flush()  # a round trip: from here on the server delivers to this listener
                listeners.add(sub)
                async for msg in sub.messages:  # ends when unsubscribed or the connection closes
                    try:
                        message = decode(msg.data)
                    except CodecError as exc:  # a watcher skips what it cannot read; a worker stops
                        log.warning("bus listener skipped a message", topic=topic, error=str(exc))
                        continue
                    yield message
            finally:
                listeners.discard(sub)
                with contextlib.suppress(NatsError):  # already unsubscribed, or the connection is gone
                    await sub.unsubscribe()

        return messages()

    async def lag(self) -> dict[tuple[str, str], int]:
        """Messages not yet delivered or not yet acknowledged, per (topic, durable) this process consumes."""
        js = self._context()
        out: dict[tuple[str, str], int] = {}
        for key, name in list(self._consumers.items()):
            try:
                info = await js.consumer_info(self._prefix, name)
            except NotFoundError:  # not created yet: its first pull makes it
                continue
            out[key] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return out

    def listening(self, topic: str) -> int:
        """How many listeners of ``topic`` this connection has now."""
        return len(self._listeners[topic])

    async def close(self) -> None:
        # Listeners first: unsubscribing ends their iteration at once, whereas draining would wait
        # for them to read what nats-py buffered for them.
        for listeners in self._listeners.values():
            for sub in list(listeners):
                with contextlib.suppress(NatsError):
                    await sub.unsubscribe()
        self._listeners.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        self._nc = None
        self._js = None
