"""The bus across machines: NATS JetStream durable streams with the same Protocol as the in-process bus.

One stream (``<prefix>``) holds every topic as subject ``<prefix>.<topic>``. A subscription is a
durable pull consumer named after (topic, durable): workers sharing a durable name share the messages
(a queue group), and a restarted worker resumes where its group left off. A message is acknowledged
when the worker asks for the next one, i.e. after it handled it: delivery is at least once, and a
worker that dies mid-message gets it redelivered (after ``ack_wait``) to another.

A listener is an ordered consumer: ephemeral, in memory, unacknowledged, pushed to this connection,
starting at the time ``listen`` was called. nats-py recreates it from the next stream sequence when it
sees a gap or misses heartbeats (a reconnect), so a listener skips nothing the stream still holds.
It is deleted when the listener closes or is cancelled, and by ``close()``; one orphaned by a crash
is removed by the server after ``listener_idle`` seconds without interest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from breakglass.bus.codec import CodecError, decode, encode
from breakglass.errors import BreakglassError
from breakglass.logs import get_logger

__all__ = ["JetStreamBus"]

log = get_logger(__name__)


class JetStreamBus:
    """Construct, then ``await connect()``; ``close()`` drains the connection."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "breakglass",
        ack_wait: float = 30.0,
        max_age: float = 7 * 24 * 3600,
        fetch_batch: int = 64,
        listener_idle: float = 10.0,
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._ack_wait = ack_wait
        self._max_age = max_age
        self._fetch_batch = fetch_batch
        self._listener_idle = listener_idle
        self._listeners: set[JetStreamContext.PushSubscription] = set()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

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

    def _context(self) -> JetStreamContext:
        if self._js is None:
            raise BreakglassError("JetStreamBus is not connected: await connect() first")
        return self._js

    async def publish(self, topic: str, message: Any) -> None:
        await self._context().publish(f"{self._prefix}.{topic}", encode(message))

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        js = self._context()
        subject = f"{self._prefix}.{topic}"
        name = f"{durable}-{topic}".replace(".", "_")
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
                    except NatsTimeout:
                        continue
                    for msg in batch:
                        yield decode(msg.data)
                        await msg.ack()  # the worker came back for more: it handled this one
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return messages()

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        js = self._context()
        subject = f"{self._prefix}.{topic}"
        # As in subscribe: "from now on" is from this call, although the consumer is created when the
        # listener is first iterated. Stream timestamps are the server's clock, ``since`` is ours.
        since = datetime.now(UTC)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=since,
            inactive_threshold=self._listener_idle,
        )

        async def messages() -> AsyncGenerator[Any, None]:
            sub = await js.subscribe(subject, stream=self._prefix, config=config, ordered_consumer=True)
            self._listeners.add(sub)
            try:
                async for msg in sub.messages:  # ends when unsubscribed or the connection closes
                    try:
                        message = decode(msg.data)
                    except CodecError as exc:  # a watcher skips what it cannot read; a worker stops
                        log.warning("bus listener skipped a message", topic=topic, error=str(exc))
                        continue
                    yield message
            finally:
                self._listeners.discard(sub)
                await self._forget(sub)

        return messages()

    async def _forget(self, sub: JetStreamContext.PushSubscription) -> None:
        """Unsubscribe and delete the listener's consumer now, not ``listener_idle`` seconds later.

        Best effort: whatever fails here (the connection went away, the consumer is already gone),
        the server's idle timer removes the consumer anyway."""
        if self._nc is None or self._nc.is_closed:
            return
        name = None
        with contextlib.suppress(NatsError):
            name = (await sub.consumer_info()).name  # not fixed: nats-py recreates it after a gap
        with contextlib.suppress(NatsError):
            await sub.unsubscribe()
        if name is not None:
            with contextlib.suppress(NatsError):
                await self._context().delete_consumer(self._prefix, name)

    async def close(self) -> None:
        for sub in list(self._listeners):
            await self._forget(sub)
        self._listeners.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.drain()
        self._nc = None
        self._js = None
