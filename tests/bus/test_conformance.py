"""One behaviour, two buses: the in-process queues and NATS JetStream pass the same tests.

Durable subscriptions (work, at least once) first, then listeners (watching, fan-out, at most once).

JetStream tests need ``BREAKGLASS_TEST_NATS_URL`` (e.g. nats://127.0.0.1:4222, a server started with
``-js``); CI sets it. Each test uses its own stream, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from breakglass.bus import Bus, InProcessBus
from breakglass.domain import Finding, FindingStage, Hash32, Severity
from breakglass.testing import service_url, wait_until


def finding(n: int) -> Finding:
    return Finding(
        monitor_id="vault-outflow",
        severity=Severity.CRITICAL,
        chain_id=31337,
        block_number=n,
        title=f"outflow {n}",
        stage=FindingStage.PENDING,
        tx_hash=Hash32("0x" + f"{n:064x}"),
        labels={"market": "2"},
        evidence={"amount": n * 10**6, "path": ["a", "b"]},
    )


@contextlib.asynccontextmanager
async def jetstream_bus() -> AsyncIterator[Any]:
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    from breakglass.bus.jetstream import JetStreamBus

    prefix = f"bgtest_{uuid.uuid4().hex[:10]}"
    jetstream = await JetStreamBus(url, prefix=prefix, ack_wait=1.0).connect()
    try:
        yield jetstream
    finally:
        await jetstream._context().delete_stream(prefix)
        await jetstream.close()


@pytest.fixture(params=["memory", "jetstream"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        memory = InProcessBus()
        yield memory
        await memory.close()
        return
    async with jetstream_bus() as jetstream:
        yield jetstream


async def take(messages: AsyncIterator[Any], n: int, timeout: float = 10.0) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        async for message in messages:
            out.append(message)
            if len(out) == n:
                break
    return out


async def test_every_durable_subscription_gets_every_message_in_order(bus: Bus) -> None:
    alerts = bus.subscribe("findings", "alerts")
    respond = bus.subscribe("findings", "respond")
    sent = [finding(i) for i in range(5)]
    for message in sent:
        await bus.publish("findings", message)
    assert await take(alerts, 5) == sent
    assert await take(respond, 5) == sent


async def test_messages_published_before_iteration_starts_are_not_lost(bus: Bus) -> None:
    late = bus.subscribe("findings", "late-reader")
    await bus.publish("findings", finding(7))
    await asyncio.sleep(0)  # the reader has not started iterating yet
    assert await take(late, 1) == [finding(7)]


async def test_workers_sharing_a_durable_name_handle_each_message_once(bus: Bus) -> None:
    first = bus.subscribe("findings", "workers")
    second = bus.subscribe("findings", "workers")
    sent = [finding(i) for i in range(40)]
    got: list[Finding] = []

    async def work(messages: AsyncIterator[Any]) -> None:
        async for message in messages:
            got.append(message)

    tasks = [asyncio.create_task(work(first)), asyncio.create_task(work(second))]
    for message in sent:
        await bus.publish("findings", message)
    async with asyncio.timeout(15):
        while len(got) < len(sent):
            await asyncio.sleep(0.01)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(got, key=lambda f: f.block_number) == sent  # each exactly once


async def test_a_message_published_again_under_the_same_dedup_name_travels_once(bus: Bus) -> None:
    # a redelivered work item whose worker died after publishing its finding publishes it again
    alerts = bus.subscribe("findings", "alerts")
    await bus.publish("findings", finding(1), dedup="pending:1")
    await bus.publish("findings", finding(1), dedup="pending:1")
    await bus.publish("actions", finding(1), dedup="pending:1")  # another topic: another name
    await bus.publish("findings", finding(2), dedup="pending:2")
    await bus.publish("findings", finding(2))  # unnamed: always delivered
    assert await take(alerts, 3) == [finding(1), finding(2), finding(2)]


async def test_topics_are_separate(bus: Bus) -> None:
    actions = bus.subscribe("actions", "incidents")
    await bus.publish("findings", finding(1))
    await bus.publish("actions", finding(2))
    assert await take(actions, 1) == [finding(2)]


async def test_settled_is_done_once_what_was_published_before_it_is_durable_for_every_consumer(
    bus: Bus,
) -> None:
    alerts = bus.subscribe("findings", "alerts")
    for i in range(3):
        await bus.publish("findings", finding(i))
    mark = bus.settled("findings")
    if isinstance(bus, InProcessBus):  # its queues die with the process: durable once handled
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.ensure_future(mark), 0.2)
        await take(alerts, 3)  # the third is taken, not yet handled: the worker has not come back
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.ensure_future(mark), 0.2)
        await bus.publish("findings", finding(3))  # after the mark: not waited for
        await take(alerts, 1)
    await asyncio.wait_for(asyncio.ensure_future(mark), 5)  # JetStream: the server stored them


async def test_lag_counts_per_durable_what_was_published_and_not_yet_handled(bus: Bus) -> None:
    # breakglass_bus_consumer_lag_messages: one figure per (topic, durable), taken-but-unfinished
    # messages included (the worker has not come back for the next one: JetStream's ack pending)
    alerts, respond = bus.subscribe("findings", "alerts"), bus.subscribe("findings", "respond")
    await bus.publish("findings", finding(0))
    assert await take(respond, 1) == [finding(0)]  # a networked bus makes its consumer on first pull
    for n in range(1, 6):
        await bus.publish("findings", finding(n))
    assert await take(alerts, 4) == [finding(n) for n in range(4)]  # 3 handled, the 4th in hand
    await bus.publish("actions", finding(9))  # another topic, nobody subscribed: no figure
    want = {("findings", "alerts"): 3, ("findings", "respond"): 6}
    lag = bus.lag  # type: ignore[attr-defined]  # both buses have it; the metrics refresher asks
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10  # acknowledgements reach the server asynchronously
    while (got := await lag()) != want and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert got == want


async def test_jetstream_redelivers_what_a_dead_worker_did_not_finish() -> None:
    async with jetstream_bus() as bus:
        await _redelivery(bus)


async def _redelivery(bus: Any) -> None:
    doomed = bus.subscribe("findings", "responder")
    await bus.publish("findings", finding(3))
    assert await take(doomed, 1) == [finding(3)]  # handed over, never acknowledged: the worker dies
    await doomed.aclose()  # type: ignore[attr-defined]
    survivor = bus.subscribe("findings", "responder")
    assert await take(survivor, 1, timeout=15) == [finding(3)]


async def test_jetstream_does_not_redeliver_what_a_live_worker_is_still_working_on() -> None:
    # A worker retrying one message while the store is down holds it (and the rest of its batch) for
    # longer than ack_wait (1 s here): the server must not hand them out again to be handled twice.
    async with jetstream_bus() as bus:
        slow, other = bus.subscribe("findings", "alerts"), bus.subscribe("findings", "alerts")
        for n in range(3):
            await bus.publish("findings", finding(n))
        first = await take(slow, 1)
        seen: list[Any] = []

        async def compete() -> None:
            async for message in other:
                seen.append(message)

        competitor = asyncio.create_task(compete())
        await asyncio.sleep(3.5)  # three ack_waits while the slow worker "retries" its message
        assert seen == []  # nothing redelivered to the other worker of the group
        rest = await take(slow, 2)
        await asyncio.sleep(1.5)
        await stop(competitor)
        await slow.aclose()  # type: ignore[attr-defined]
        await other.aclose()  # type: ignore[attr-defined]
    assert first + rest == [finding(0), finding(1), finding(2)] and seen == []


# Listeners: every one hears everything published while it listens; nothing is kept or left behind.


def watch(bus: Bus, topic: str, heard: list[Any]) -> asyncio.Task[None]:
    """A listener reading in the background, as the API's event hub does."""

    async def run() -> None:
        async with contextlib.aclosing(bus.listen(topic)) as listener:
            async for message in listener:
                heard.append(message)

    return asyncio.create_task(run())


async def listeners(bus: Any, topic: str, n: int) -> None:
    """Wait until ``topic`` has ``n`` listeners (a networked bus subscribes on first iteration)."""
    await wait_until(lambda: bus.listening(topic) == n, within=10, what=f"{n} listeners of {topic}")


async def consumers(bus: Any) -> int:
    """What the server keeps for this test's stream (0 for the in-process bus: there is no server)."""
    if isinstance(bus, InProcessBus):
        return 0
    return int((await bus._context().stream_info(bus._prefix)).state.consumer_count)


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_every_listener_hears_every_message_in_order_and_durables_still_get_theirs(bus: Bus) -> None:
    first: list[Any] = []
    second: list[Any] = []
    tasks = watch(bus, "findings", first), watch(bus, "findings", second)
    work = bus.subscribe("findings", "alerts")
    await listeners(bus, "findings", 2)
    sent = [finding(i) for i in range(5)]
    for message in sent:
        await bus.publish("findings", message)
    await wait_until(lambda: len(first) == len(second) == 5, within=10, what="both listeners heard all")
    assert first == second == sent  # fan-out: not shared like a queue group
    assert await take(work, 5) == sent
    await stop(*tasks)


async def test_a_listener_hears_nothing_published_before_it_started(bus: Bus) -> None:
    await bus.publish("findings", finding(1))
    heard: list[Any] = []
    task = watch(bus, "findings", heard)
    await listeners(bus, "findings", 1)
    await bus.publish("findings", finding(2))
    await wait_until(lambda: bool(heard), within=10, what="the listener heard")
    await bus.publish("findings", finding(3))
    await wait_until(lambda: len(heard) == 2, within=10, what="the listener heard")
    assert heard == [finding(2), finding(3)]
    await stop(task)


async def test_a_listener_keeps_nothing_on_the_server_and_a_closed_one_leaves_nothing_behind(
    bus: Bus,
) -> None:
    listener = bus.listen("findings")
    reading = asyncio.create_task(take(listener, 1))
    await listeners(bus, "findings", 1)
    await bus.publish("findings", finding(1))
    assert await reading == [finding(1)]
    assert await consumers(bus) == 0
    await listener.aclose()
    assert bus.listening("findings") == 0  # type: ignore[attr-defined]
    assert await consumers(bus) == 0


async def test_a_cancelled_listener_leaves_nothing_behind(bus: Bus) -> None:
    heard: list[Any] = []
    task = watch(bus, "findings", heard)
    await listeners(bus, "findings", 1)
    await bus.publish("findings", finding(1))
    await wait_until(lambda: bool(heard), within=10, what="the message heard")
    await stop(task)
    assert bus.listening("findings") == 0  # type: ignore[attr-defined]
    assert await consumers(bus) == 0


async def test_a_listener_that_does_not_read_holds_up_neither_publishers_nor_workers(bus: Bus) -> None:
    idle = bus.listen("findings")
    reading = asyncio.create_task(take(idle, 1))
    await listeners(bus, "findings", 1)
    await bus.publish("findings", finding(0))
    assert await reading == [finding(0)]  # started, then stops reading
    work = bus.subscribe("findings", "alerts")
    sent = [finding(i) for i in range(1, 201)]
    async with asyncio.timeout(10):
        for message in sent:
            await bus.publish("findings", message)
    assert await take(work, 200) == sent
    await idle.aclose()


async def test_an_in_process_listener_listens_from_the_call() -> None:
    bus = InProcessBus()
    listener = bus.listen("findings")
    await bus.publish("findings", finding(4))  # the listener has not started iterating yet
    assert await take(listener, 1) == [finding(4)]
    await listener.aclose()
    await bus.close()


async def test_an_in_process_listener_that_falls_behind_loses_its_oldest_messages_and_they_are_counted() -> (
    None
):
    bus = InProcessBus(listener_buffer=3)
    slow = bus.listen("findings")
    for i in range(10):  # never waits, although nobody reads
        await bus.publish("findings", finding(i))
    assert await take(slow, 3) == [finding(7), finding(8), finding(9)]
    assert bus.listener_drops == 7
    await slow.aclose()
    await bus.close()


async def test_an_in_process_listener_dropped_unread_is_forgotten() -> None:
    bus = InProcessBus()
    bus.listen("findings")  # never iterated, so never closed: only garbage collection ends it
    assert bus.listening("findings") == 0
    await bus.close()


async def test_closing_the_in_process_bus_ends_its_listeners_after_what_they_hold() -> None:
    bus = InProcessBus()
    listener = bus.listen("findings")
    await bus.publish("findings", finding(1))
    await bus.close()
    assert [message async for message in listener] == [finding(1)]
    assert [message async for message in bus.listen("findings")] == []


async def test_closing_a_jetstream_bus_ends_its_listeners() -> None:
    async with jetstream_bus() as bus:
        from breakglass.bus.jetstream import JetStreamBus

        other = await JetStreamBus(bus._url, prefix=bus._prefix).connect()  # another process
        heard: list[Any] = []
        task = watch(other, "findings", heard)
        await listeners(other, "findings", 1)
        await bus.publish("findings", finding(1))
        await wait_until(lambda: bool(heard), within=10, what="the message heard")
        await other.close()
        async with asyncio.timeout(10):
            await task  # the iteration ended by itself
        assert other.listening("findings") == 0
