"""A work queue over NATS JetStream: items shared by N workers, each done by one, redone when its worker dies.

The pending-transaction simulation is its user (``simulate/worker.py``): the mempool watcher submits
one item per pending transaction, the ``simulate`` workers share them.

- A stream of its own, ``<prefix>-work-<name>`` on the subject ``<prefix>-work.<name>`` (outside the
  bus stream's ``<prefix>.>``), with work-queue retention: an item is deleted once acknowledged, and
  kept ``max_age`` seconds at most (nobody took it: its transaction is long mined or dropped).
- ``submit(item, key)`` publishes with ``Nats-Msg-Id`` = ``key``: the same item submitted twice within
  the stream's duplicate window (two watchers, a retried publish) is queued once.
- One durable pull consumer, ``<name>-workers``, shared by every worker (explicit acknowledgement):
  the server hands each item to one of them. ``work(handle)`` takes up to ``concurrency`` items at a
  time and acknowledges each once its handler returned (its results are published). A worker that
  dies holding items (SIGKILL, a lost machine) never acknowledges them: the server redelivers each
  to another worker ``ack_wait`` seconds after it delivered it. A live worker tells the server every
  third of ``ack_wait`` that it is still on the items it holds (``in_progress``), so a slow item is
  not done twice; one stopped cleanly gives its unfinished items back at once (``nak``). An item is
  delivered at most ``max_deliver`` times: one that kills every worker taking it stops there.
- Verdicts (``report``/``verdicts``) travel on core NATS, ``<prefix>-work.<name>.verdicts``, outside
  every stream: nothing is kept for them; watchers (metrics, tests, the benchmark) listen.

Delivery is at least once: a worker killed after publishing an item's results and before its
acknowledgement reached the server has the item redone. Its results are published under a ``dedup``
name (``Bus.publish``), so they travel once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from breakglass.bus.cancel import raise_if_cancelling
from breakglass.bus.codec import CodecError, decode, encode
from breakglass.bus.jetstream import JetStreamBus
from breakglass.logs import get_logger

__all__ = ["JetStreamWorkQueue"]

log = get_logger(__name__)

Handler = Callable[[Any], Awaitable[object]]


class JetStreamWorkQueue:
    """``await open()`` (after the bus connected), then ``submit`` (producers) or ``work`` (workers)."""

    def __init__(
        self,
        bus: JetStreamBus,
        name: str,
        *,
        ack_wait: float = 5.0,
        max_deliver: int = 5,
        max_age: float = 600.0,
        max_items: int = 100_000,
    ) -> None:
        self.bus = bus
        self.name = name
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.max_age = max_age
        self.max_items = max_items
        self.stream = f"{bus.prefix}-work-{name}"
        self.subject = f"{bus.prefix}-work.{name}"
        self.durable = f"{name}-workers"
        self.taken = 0
        self.done = 0
        self.redelivered = 0
        """items this worker took that had been delivered before (to a worker that died, or gave up)"""
        self.restarts = 0
        self.running = False
        self.last_error: str | None = None
        self.last_progress_at: float | None = None

    @property
    def verdict_subject(self) -> str:
        return f"{self.subject}.verdicts"

    async def open(self) -> JetStreamWorkQueue:
        """Create the stream, or bring an existing one's limits up to date."""
        _nc, js = self.bus.connection()
        config = StreamConfig(
            name=self.stream,
            subjects=[self.subject],
            retention=RetentionPolicy.WORK_QUEUE,
            max_age=self.max_age,
            max_msgs=self.max_items,
            discard=DiscardPolicy.OLD,
        )
        try:
            await js.stream_info(self.stream)
            await js.update_stream(config)
        except NotFoundError:
            await js.add_stream(config)
        return self

    async def submit(self, item: Any, key: str) -> None:
        """Queue ``item`` (a registered bus type) once under ``key``; returns once the server stored it."""
        _nc, js = self.bus.connection()
        await js.publish(self.subject, encode(item), stream=self.stream, headers={"Nats-Msg-Id": key})

    async def report(self, verdict: Any) -> None:
        """Tell the watchers of verdicts (at most once: nothing is kept)."""
        nc, _js = self.bus.connection()
        await nc.publish(self.verdict_subject, encode(verdict))

    async def verdicts(self) -> AsyncGenerator[Any, None]:
        """Every verdict reported while this generator runs (subscribed at its first iteration)."""
        nc, _js = self.bus.connection()
        sub = await nc.subscribe(self.verdict_subject, pending_msgs_limit=100_000)
        try:
            await nc.flush()
            async for msg in sub.messages:
                with contextlib.suppress(CodecError):
                    yield decode(msg.data)
        finally:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def waiting(self) -> int:
        """Items queued and not yet acknowledged (taken ones included)."""
        _nc, js = self.bus.connection()
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            return (await js.stream_info(self.stream)).state.messages
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def backlog(self) -> tuple[int, float]:
        """(items waiting, as ``waiting()``; seconds the oldest of them has waited, 0 when none). With
        work-queue retention an acknowledged item is deleted, so the stream's first message is the
        oldest one not done yet. Its age is this machine's wall clock less the server's stamp on it
        (``/metrics``: ``breakglass_work_queue_*``)."""
        waiting = await self.waiting()
        _nc, js = self.bus.connection()
        state = (await js.stream_info(self.stream)).state
        if not state.messages:
            return waiting, 0.0
        try:  # the first message, or the next one if it was acknowledged meanwhile
            oldest = await js.get_msg(self.stream, seq=state.first_seq, subject=self.subject, next=True)
        except NotFoundError:  # all done meanwhile
            return waiting, 0.0
        if oldest.time is None:
            return waiting, 0.0
        return waiting, max(0.0, time.time() - oldest.time.timestamp())

    def _consumer(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=self.max_deliver,
            filter_subject=self.subject,
        )

    async def work(self, handle: Handler, *, concurrency: int = 32, backoff: float = 0.1) -> None:
        """Hand items to ``handle``, up to ``concurrency`` at once, until cancelled. A handler that
        raises is logged and its item acknowledged (it would raise again); a subscription that fails
        (the connection closed, a JetStream API error) is taken again after a backoff (0.1 s doubling
        to 5 s), its unacknowledged items coming back after ``ack_wait``."""
        delay = backoff
        while True:
            began = time.monotonic()
            try:
                await self._work(handle, concurrency)
            except Exception as exc:
                self.running = False
                if time.monotonic() - began > 5.0:
                    delay = backoff
                self.restarts += 1
                self.last_error = type(exc).__name__
                log.error("workqueue.failed", queue=self.name, error=type(exc).__name__,
                          restarts=self.restarts, restart_in=delay, exc_info=True)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _work(self, handle: Handler, concurrency: int) -> None:
        _nc, js = self.bus.connection()
        sub = await js.pull_subscribe(
            self.subject, durable=self.durable, stream=self.stream, config=self._consumer()
        )
        held: dict[asyncio.Task[None], Msg] = {}
        keepalive = asyncio.create_task(self._in_progress(held))
        self.running = True
        self.last_progress_at = time.monotonic()
        refill = max(1, concurrency // 4)  # a fetch is a round trip: not one per finished item
        try:
            while True:
                room = concurrency - len(held)
                if room < refill:
                    await asyncio.wait(list(held), return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    batch = await sub.fetch(room, timeout=1.0)
                except TimeoutError as exc:  # nothing within the second (nats-py's, or asyncio's when busy)
                    raise_if_cancelling(exc)
                    continue
                for msg in batch:
                    self.taken += 1
                    if msg.metadata.num_delivered > 1:
                        self.redelivered += 1
                    task = asyncio.create_task(self._one(msg, handle))
                    held[task] = msg
                    task.add_done_callback(lambda t: held.pop(t, None))
        finally:
            self.running = False
            keepalive.cancel()
            unfinished = list(held.items())
            for task, _msg in unfinished:
                task.cancel()
            for task, msg in unfinished:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                with contextlib.suppress(NatsError):
                    await msg.nak()  # stopped cleanly: another worker takes it now, not after ack_wait
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _one(self, msg: Msg, handle: Handler) -> None:
        try:
            item = decode(msg.data)
        except CodecError as exc:
            log.warning("workqueue.undecodable", queue=self.name, error=str(exc))
            with contextlib.suppress(NatsError):
                await msg.term()
            return
        try:
            await handle(item)
        except Exception:  # the handler's own failure: skip the item, keep working
            log.exception("workqueue.item_failed", queue=self.name)
        with contextlib.suppress(NatsError):
            await msg.ack()
        self.done += 1
        self.last_progress_at = time.monotonic()

    async def _in_progress(self, held: dict[asyncio.Task[None], Msg]) -> None:
        """While this worker holds items, keep telling the server it is working on them."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in list(held.values()):
                with contextlib.suppress(NatsError):
                    await msg.in_progress()
