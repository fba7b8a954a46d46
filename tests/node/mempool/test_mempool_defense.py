"""The suite's ``Defense.close``: a stage that outlives its stop fails the test that ran it, and the app
is closed all the same (a load-9 run once left its store connections to be reported by the next test)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

import pytest
from mempool_defense import Defense


class _App:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close(self) -> None:
        self.closed.set()


async def test_a_stage_that_outlives_its_stop_fails_close_after_the_app_is_closed() -> None:
    app = _App()
    stop_seen = asyncio.Event()

    async def deaf_stage(stop: asyncio.Event) -> None:
        await stop.wait()
        stop_seen.set()
        with contextlib.suppress(asyncio.CancelledError):  # ignores its stop: waits on
            await asyncio.sleep(3600)

    async def polite_stage(stop: asyncio.Event) -> None:
        await stop.wait()

    defense = Defense(cast(Any, app))
    defense.tasks = [
        asyncio.create_task(app.closed.wait()),  # the collector: ends when the app closes
        asyncio.create_task(deaf_stage(defense.stop)),
        asyncio.create_task(polite_stage(defense.stop)),
    ]
    with pytest.raises(AssertionError, match=r"did not end within 0\.5 s of its stop"):
        await defense.close(within=0.5)
    assert stop_seen.is_set() and app.closed.is_set()
    assert all(task.done() for task in defense.tasks)
