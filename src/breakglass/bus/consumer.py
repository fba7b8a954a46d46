"""A stage's durable subscription, supervised: it never ends silently while the process runs.

A stage gives ``Consumer`` a topic, a durable name and a handler. The consumer reads the subscription
and hands each message to the handler; a handler that raises is logged and the message skipped (one
bad message must not stop the next ones). Anything else that goes wrong (the subscription itself
raising: a nats-py ``ConnectionClosedError``, an ``asyncio.TimeoutError`` when the event loop was
busy, a JetStream API error, a bug) is logged at once with the topic and durable name, and the
consumer subscribes again after a backoff (0.1 s doubling to 5 s), resuming where its group left off.
The subscription ending normally (the bus closed) ends the consumer. So does a cancel, even one that
the handler swallowed (a library's ``except``, Python 3.11's ``wait_for``): the consumer asks
``Task.cancelling()`` after each message rather than wait for a next one nobody will publish.

Its state is public for readiness and metrics: ``subscribed``, ``running`` (reading, not waiting to restart),
``restarts``, ``last_error`` and ``last_progress_at``. ``consumers_ready`` is the ``/readyz`` check
over a stage set's consumers: each must be running, and one with messages waiting must not have gone
``STALL_SECONDS`` without handling one nor be more than ``MAX_LAG`` behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from breakglass.bus.base import Bus
from breakglass.bus.cancel import cancelling, raise_if_cancelling
from breakglass.health import Check, CheckResult
from breakglass.logs import get_logger
from breakglass.metrics import BUS_CONSUMER_RESTARTS, BUS_CONSUMER_UP

__all__ = ["MAX_LAG", "STALL_SECONDS", "Consumer", "consumers_ready"]

log = get_logger(__name__)

MAX_LAG = 10_000
"""Readiness: a consumer this many messages behind is not ready, however fast it goes."""
STALL_SECONDS = 60.0
"""Readiness: a consumer with messages waiting that handled none for this long is stuck."""

Handler = Callable[[Any], Awaitable[object]]


class Consumer:
    """``subscribe()`` (no I/O, takes the subscription now), ``start()`` (reads in a background task),
    ``close()``; or ``run()`` in a task of the caller's."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        durable: str,
        handle: Handler,
        *,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self.bus = bus
        self.topic = topic
        self.durable = durable
        self.handle = handle
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.subscribed = False
        """This process took the subscription (and so the duty to read it) and has not closed it."""
        self.running = False
        """Reading its subscription: started, not waiting to restart, not ended."""
        self.restarts = 0
        self.last_error: str | None = None
        """The class of the last exception that restarted it (never its message: it may quote a URL)."""
        self.last_progress_at: float | None = None
        """``time.monotonic()`` of the last message handled, or of the last (re)start."""
        self._messages: AsyncIterator[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = BUS_CONSUMER_UP.labels(topic, durable)
        self._restarted = BUS_CONSUMER_RESTARTS.labels(topic, durable)

    def __repr__(self) -> str:
        return f"Consumer({self.topic!r}, {self.durable!r})"

    def subscribe(self) -> None:
        """Take the subscription now: what is published from here on waits for this consumer."""
        if self._messages is None:
            self._messages = self.bus.subscribe(self.topic, self.durable)
        self.subscribed = True

    def start(self) -> None:
        """Subscribe (if not yet) and read in the background. Idempotent."""
        if self._task is None or self._task.done():
            self.subscribe()
            self._task = asyncio.create_task(self.run(), name=f"consumer {self.durable}/{self.topic}")

    async def run(self) -> None:
        """Read until the bus closes, restarting after any failure; cancel to stop."""
        delay = self.backoff
        messages: AsyncIterator[Any] | None = None
        try:
            while True:
                self.subscribe()
                messages, self._messages = self._messages, None
                assert messages is not None
                began = time.monotonic()
                self._set_running(True)
                try:
                    async for message in messages:
                        try:
                            await self.handle(message)
                        except Exception:  # the handler's own failure: skip the message, keep reading
                            log.exception("bus.message_failed", topic=self.topic, durable=self.durable)
                        self.last_progress_at = time.monotonic()
                        delay = self.backoff
                        if cancelling():  # the handler swallowed our cancel: end now, not never
                            raise asyncio.CancelledError
                    return  # the bus closed: nothing more will come
                except Exception as exc:
                    raise_if_cancelling(exc)  # a cancelled fetch that nats-py answered with its own error
                    self._set_running(False)
                    if time.monotonic() - began > self.max_backoff:
                        delay = self.backoff  # it had been working: a fresh failure, not a streak
                    self.restarts += 1
                    self.last_error = type(exc).__name__
                    self._restarted.inc()
                    log.error("bus.consumer_failed", topic=self.topic, durable=self.durable,
                              error=type(exc).__name__, restarts=self.restarts, restart_in=delay,
                              exc_info=True)  # fmt: skip
                    with contextlib.suppress(Exception):
                        await _aclose(messages)
                    messages = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
        finally:
            self._set_running(False)
            if messages is not None:  # cancelled: let the subscription clean up now, not at GC
                with contextlib.suppress(Exception):
                    await _aclose(messages)

    def _set_running(self, running: bool) -> None:
        self.running = running
        self._up.set(1 if running else 0)
        if running:
            self.last_progress_at = time.monotonic()

    def status(self, waiting: int | None) -> CheckResult:
        """Readiness of this consumer given the messages ``waiting`` for its group (None: unknown)."""
        name = f"{self.durable}/{self.topic}"
        if not self.running:
            cause = f" after {self.last_error}" if self.last_error else ""
            return CheckResult(False, f"{name} not running{cause} ({self.restarts} restarts)")
        if waiting:
            if waiting > MAX_LAG:
                return CheckResult(False, f"{name} {waiting} messages behind")
            idle = time.monotonic() - (self.last_progress_at or 0.0)
            if idle > STALL_SECONDS:
                return CheckResult(False, f"{name} handled nothing for {idle:.0f} s, {waiting} waiting")
        return CheckResult(True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._messages is not None:
            with contextlib.suppress(Exception):
                await _aclose(self._messages)
            self._messages = None
        self._set_running(False)
        self.subscribed = False


async def _aclose(messages: AsyncIterator[Any]) -> None:
    closer = getattr(messages, "aclose", None)
    if closer is not None:
        await closer()


def consumers_ready(bus: Bus, consumers: Callable[[], Iterable[Consumer]]) -> Check:
    """The readiness check of ``consumers()`` that were subscribed (asked at each run: stages may
    start theirs late; one never subscribed is not this process's work, as in an API-only app)."""

    async def check() -> CheckResult:
        mine = [c for c in consumers() if c.subscribed]
        lag: dict[tuple[str, str], int] = {}
        reader = getattr(bus, "lag", None)
        if reader is not None and mine:
            lag = await reader()
        failed = [r for c in mine if not (r := c.status(lag.get((c.topic, c.durable)))).ok]
        if failed:
            return CheckResult(False, "; ".join(r.detail for r in failed))
        return CheckResult(True, f"{len(mine)} consumers" if mine else "")

    return check
