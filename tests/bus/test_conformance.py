"""One behaviour, two buses: the in-process queues and NATS JetStream pass the same tests.

JetStream tests need ``BREAKGLASS_TEST_NATS_URL`` (e.g. nats://127.0.0.1:4222, a server started with
``-js``); CI sets it. Each test uses its own stream, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from breakglass.bus import Bus, InProcessBus
from breakglass.domain import Finding, FindingStage, Hash32, Severity


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
    url = os.environ.get("BREAKGLASS_TEST_NATS_URL")
    if not url:
        message = "JetStream tests need BREAKGLASS_TEST_NATS_URL (e.g. nats://127.0.0.1:4222)"
        if os.environ.get("BREAKGLASS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + "; BREAKGLASS_REQUIRE_SERVICES=1 forbids skipping them")
        pytest.skip(message)
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


async def test_topics_are_separate(bus: Bus) -> None:
    actions = bus.subscribe("actions", "incidents")
    await bus.publish("findings", finding(1))
    await bus.publish("actions", finding(2))
    assert await take(actions, 1) == [finding(2)]


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
