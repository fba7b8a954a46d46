"""A consumer stops when cancelled even if its subscription answers the cancel with another error.

nats-py answers a cancelled ``fetch`` with its own ``TimeoutError`` or a connection error; before
``raise_if_cancelling`` the supervised consumer took that for a failure, re-subscribed and never ended
(the responder's stop hung 30 s, then was cancelled, on every JetStream run).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from breakglass.bus import InProcessBus
from breakglass.bus.cancel import cancelling, raise_if_cancelling
from breakglass.bus.consumer import Consumer


class _Disguised(Exception):
    """What a client library raises instead of letting CancelledError through."""


class _Bus(InProcessBus):
    def __init__(self, error: type[BaseException]) -> None:
        super().__init__()
        self.error = error
        self.subscriptions = 0
        self.waiting = asyncio.Event()

    def subscribe(self, topic: str, group: str) -> AsyncIterator[Any]:
        self.subscriptions += 1
        return self._messages()

    async def _messages(self) -> AsyncIterator[Any]:
        if self.subscriptions > 1:  # a re-subscription (the bug) ends at once, so the test ends too
            return
        try:
            self.waiting.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise self.error("cancelled fetch") from None
        yield None  # pragma: no cover


@pytest.mark.parametrize("error", [_Disguised, TimeoutError])
async def test_a_cancel_answered_with_another_error_ends_the_consumer(error: type[BaseException]) -> None:
    bus = _Bus(error)

    async def handle(_message: object) -> None:
        return None

    consumer = Consumer(bus, "findings", "respond", handle, backoff=0.01)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(bus.waiting.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done
    assert task.cancelled(), "the consumer re-subscribed instead of ending on cancel"
    assert bus.subscriptions == 1
    assert consumer.restarts == 0
    assert not consumer.running


async def test_raise_if_cancelling_only_while_cancelling() -> None:
    raise_if_cancelling(_Disguised("not cancelled"))  # returns: a real failure is handled as one
    assert not cancelling()
    seen: list[bool] = []

    async def body() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, as a library's except would
            await asyncio.sleep(3600)
        seen.append(cancelling())
        raise_if_cancelling(_Disguised("cancelled"))
        seen.append(False)  # pragma: no cover

    task = asyncio.create_task(body())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [True]
