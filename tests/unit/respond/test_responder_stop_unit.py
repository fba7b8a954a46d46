"""The responder ends on its stop whatever it was awaiting when the stop came.

``Responder.run`` cancels its findings consumer once ``stop`` is set. On Python 3.11 a cancel that
reaches ``asyncio.wait_for`` in the loop iteration its awaited work finishes in is dropped: wait_for
returns the result (gh-86296, fixed in 3.12). The ledger wrapped every store write in one, so a stop
arriving as a write returned let the handler finish, and the consumer went back to waiting for the next
finding that nobody would publish: ``run()`` hung after stop (tests/node/mempool/test_front_running.py,
``Defense.close`` timing out after 30 s at machine load 9). These tests hit that iteration on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from breakglass.bus import InProcessBus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.config.playbooks import PlaybookConfig
from breakglass.domain import Finding, Severity
from breakglass.respond import ActionEvent, ActionStep, Ledger, create_tables
from breakglass.respond.journal import LedgerJournal, journal_path
from breakglass.respond.ledger import make_hot_engine
from breakglass.respond.playbook import PlaybookBook
from breakglass.respond.responder import Responder
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.health import StoreHealth


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    """As ``build_responder`` makes it: the hot engine, a journal and a store timeout."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = make_engine(url)
    await create_tables(engine)
    journal = LedgerJournal(journal_path(url))
    made = Ledger(make_sessionmaker(engine), hot=make_hot_engine(url), journal=journal, health=StoreHealth(),
                  store_timeout=8)  # fmt: skip
    yield made
    await made.close()
    await engine.dispose()


def notify_book() -> PlaybookBook:
    """One playbook whose one step is a ledger claim (a notify step: no chain needed)."""
    config = PlaybookConfig.model_validate(
        {
            "id": "pb",
            "match": {"monitors": ["m"]},
            "actions": [{"kind": "notify", "id": "say", "message": "m"}],
        }
    )
    return PlaybookBook.compile([config], {}, "test.yaml")


def finding(block: int) -> Finding:
    return Finding(monitor_id="m", severity=Severity.CRITICAL, chain_id=1, block_number=block, title="t")


def as_the_write_returns(ledger: Ledger, then: Callable[[], object], path: str) -> list[bool]:
    """Make the ledger's claim call ``then`` in the loop iteration its result arrives in (so a stop
    set there cancels the consumer in the next one, the write done and its awaiter not yet resumed).
    Returns the list the claims' results are appended to."""
    loop = asyncio.get_running_loop()
    written: list[bool] = []
    if path == "hot":  # the write in a worker thread (SQLite and PostgreSQL, build_responder's ledger)
        claim_sync = ledger._claim_sync
        in_callback = threading.Event()

        def hold_the_loop() -> None:  # stop.set and the thread's result land in one iteration
            in_callback.set()
            time.sleep(0.2)

        def claim_then_stop(*args: Any) -> bool:
            written.append(claim_sync(*args))
            loop.call_soon_threadsafe(hold_the_loop)
            in_callback.wait(5)
            loop.call_soon_threadsafe(then)
            return written[-1]

        ledger._claim_sync = claim_then_stop  # type: ignore[method-assign]
    else:  # the write on the event loop (a ledger without a hot engine)
        ledger._hot = None
        claim_async = ledger._claim_async

        async def claim_async_then_stop(*args: Any) -> bool:
            written.append(await claim_async(*args))
            then()
            return written[-1]

        ledger._claim_async = claim_async_then_stop  # type: ignore[method-assign]
    return written


@pytest.mark.parametrize("path", ["hot", "async"])
async def test_a_stop_that_comes_as_a_ledger_write_returns_ends_the_responder(
    ledger: Ledger, path: str
) -> None:
    bus = InProcessBus()
    policy: Any = object()  # a notify step consults no policy
    responder = Responder(book=notify_book(), policy=policy, ledger=ledger, bus=bus, poll_interval=0.05)
    stop = asyncio.Event()
    written = as_the_write_returns(ledger, stop.set, path)
    responder.subscribe()  # as App.start does, before anything is published
    task = asyncio.create_task(responder.run(stop))
    await bus.publish(Topics.FINDINGS, finding(1))
    done, _ = await asyncio.wait({task}, timeout=5)
    try:
        assert written == [True]
        assert task in done, "run() did not end within 5 s of its stop (its consumer outlived the cancel)"
        task.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()


async def test_a_cancel_that_comes_as_a_thread_write_returns_is_not_dropped(ledger: Ledger) -> None:
    """The ledger's own part: the cancel reaches the awaiting task (the consumer's guard is the second)."""
    claiming: asyncio.Task[bool] | None = None

    def cancel() -> None:
        assert claiming is not None
        claiming.cancel()

    written = as_the_write_returns(ledger, lambda: asyncio.get_running_loop().call_soon(cancel), "hot")
    intent = ActionEvent(ActionStep.INTENT, "k", "pb", "say", "m", "fp", monitor_id="m")
    claiming = asyncio.create_task(ledger.claim(intent, "notify"))
    with pytest.raises(asyncio.CancelledError):
        await claiming
    assert written == [True]  # the write happened; the cancel was delivered all the same


async def test_a_consumer_whose_handler_swallowed_its_cancel_ends_after_the_message() -> None:
    """Whatever swallows a cancel inside a handler (a library, a 3.11 wait_for), the consumer ends
    once the handler returns instead of waiting for a message that will not come."""
    bus = InProcessBus()
    handling = asyncio.Event()

    async def handle(_message: object) -> None:
        handling.set()
        with contextlib.suppress(asyncio.CancelledError):  # as a library's except would
            await asyncio.sleep(3600)

    consumer = Consumer(bus, "findings", "respond", handle)
    consumer.subscribe()
    task = asyncio.create_task(consumer.run())
    await bus.publish("findings", "a finding")
    await asyncio.wait_for(handling.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    try:
        assert task in done, "the consumer went back to reading after its handler swallowed the cancel"
        assert task.cancelled()
        assert not consumer.running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.close()
