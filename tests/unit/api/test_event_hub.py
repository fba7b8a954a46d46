"""The live-event hub: every client gets every event, slow clients are cut off, secrets never leave."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import nats.errors
from structlog.testing import capture_logs

from breakglass.api.events import EventHub
from breakglass.bus import InProcessBus, Topics
from breakglass.logs import Redactor
from breakglass.testing import wait_until


async def _next_event(stream: AsyncIterator[str]) -> str:
    while True:
        chunk = await asyncio.wait_for(anext(stream), timeout=5)
        if not chunk.startswith((":", "retry")):
            return chunk


async def test_every_connected_client_receives_each_published_event() -> None:
    bus = InProcessBus()
    hub = EventHub(bus, Redactor(), topics=(Topics.INCIDENTS,))
    hub.start()
    first, second = hub.stream(), hub.stream()
    assert (await anext(first)).startswith("retry:")
    assert (await anext(second)).startswith("retry:")
    await bus.publish(Topics.INCIDENTS, {"id": "INC-1"})
    for stream in (first, second):
        assert 'event: incidents\ndata: {"id":"INC-1"}' in await _next_event(stream)
    await hub.close()


async def test_known_secrets_are_redacted_from_live_events() -> None:
    bus = InProcessBus()
    hub = EventHub(bus, Redactor(["hunter2-webhook-secret"]), topics=(Topics.TIMELINE,))
    hub.start()
    stream = hub.stream()
    await anext(stream)
    await bus.publish(Topics.TIMELINE, {"note": "url has hunter2-webhook-secret inside"})
    frame = await _next_event(stream)
    assert "hunter2" not in frame and "[redacted]" in frame
    await hub.close()


async def test_a_client_that_falls_behind_its_buffer_is_disconnected_and_others_keep_going() -> None:
    bus = InProcessBus()
    hub = EventHub(bus, Redactor(), topics=(Topics.ALERTS,), client_buffer=3)
    hub.start()
    slow, fast = hub.stream(), hub.stream()
    await anext(slow)
    await anext(fast)
    received: list[str] = []
    for i in range(5):
        await bus.publish(Topics.ALERTS, {"n": i})
        received.append(await _next_event(fast))  # the fast client keeps up
    assert len(received) == 5
    # The slow client's queue overflowed at the 4th event: its stream ends instead of growing.
    chunks = [chunk async for chunk in slow]
    assert chunks == []
    assert hub.clients == 1
    await hub.close()


async def test_closing_the_hub_ends_every_stream() -> None:
    hub = EventHub(InProcessBus(), Redactor(), topics=(Topics.ALERTS,))
    hub.start()
    stream = hub.stream()
    await anext(stream)
    await hub.close()
    assert [chunk async for chunk in stream] == []


class _FlakyListeners(InProcessBus):
    """An in-process bus whose first listener of each topic fails after one message, as a nats-py
    subscription does when its connection closes or its flush times out."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[str] = set()

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        inner = super().listen(topic)
        if topic in self.failed:
            return inner
        self.failed.add(topic)

        async def failing() -> AsyncGenerator[Any, None]:
            async with contextlib.aclosing(inner):
                yield await anext(inner)
                raise nats.errors.ConnectionClosedError

        return failing()


async def test_a_listener_that_fails_is_replaced_and_the_live_view_goes_on() -> None:
    bus = _FlakyListeners()
    hub = EventHub(bus, Redactor(), topics=(Topics.INCIDENTS,))
    hub.RELISTEN_BACKOFF = 0.01
    hub.start()
    stream = hub.stream()
    await anext(stream)
    with capture_logs() as logs:
        await bus.publish(Topics.INCIDENTS, {"id": "INC-1"})
        assert "INC-1" in await _next_event(stream)
        await wait_until(lambda: any(e["event"] == "live.listener_failed" for e in logs), what="logged")
        await wait_until(lambda: bus.listening(Topics.INCIDENTS) == 1, what="listening again")
    failed = next(e for e in logs if e["event"] == "live.listener_failed")
    assert (failed["topic"], failed["error"]) == ("incidents", "ConnectionClosedError")
    await bus.publish(Topics.INCIDENTS, {"id": "INC-2"})
    assert "INC-2" in await _next_event(stream)
    await hub.close()
