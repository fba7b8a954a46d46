"""Leader leases: one holder at a time, a larger fencing token for every acquisition, a lost lease
never renewed. The same tests on each backend: this process's memory, NATS JetStream key-value and
PostgreSQL (real servers, ``BREAKGLASS_TEST_NATS_URL`` / ``BREAKGLASS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from breakglass.ha import Lease, LeaseBackend, MemoryLeaseBackend
from breakglass.testing import postgres_database, service_url

TTL = 1.0


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    with postgres_database(server) as url:
        yield url


@pytest.fixture(params=["memory", "nats", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[tuple[LeaseBackend, LeaseBackend]]:
    """Two backends on one server (two processes' views), or one shared memory backend."""
    if request.param == "memory":
        shared = MemoryLeaseBackend()
        yield shared, shared
        return
    made: list[LeaseBackend] = []
    if request.param == "nats":
        from breakglass.ha.nats import NatsLeaseBackend

        url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
        prefix = f"t{uuid.uuid4().hex[:8]}"
        made = [NatsLeaseBackend(url, prefix=prefix), NatsLeaseBackend(url, prefix=prefix)]
    else:
        from breakglass.ha.postgres import PostgresLeaseBackend

        url = request.getfixturevalue("pg_url")
        made = [PostgresLeaseBackend(url), PostgresLeaseBackend(url)]
    try:
        yield made[0], made[1]
    finally:
        for backend in made:
            await backend.close()
        if request.param == "nats":
            await _drop_buckets(url, prefix)


async def _drop_buckets(url: str, prefix: str) -> None:
    import nats

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name.startswith(f"KV_{prefix}"):
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


def name() -> str:
    return f"respond-{uuid.uuid4().hex[:8]}"


async def until(condition: object, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_one_holder_at_a_time(backends: tuple[LeaseBackend, LeaseBackend]) -> None:
    lease = name()
    a, b = Lease(lease, "a", TTL, backends[0]), Lease(lease, "b", TTL, backends[1])
    assert await a.acquire() and a.is_held() and a.token is not None
    assert not await b.acquire() and not b.is_held() and b.token is None
    assert await a.renew() and a.is_held()
    assert not await b.acquire()


async def test_contention_gives_the_lease_to_exactly_one(backends: tuple[LeaseBackend, LeaseBackend]) -> None:
    lease = name()
    replicas = [Lease(lease, f"r{i}", TTL, backends[i % 2]) for i in range(6)]
    won = await asyncio.gather(*(r.acquire() for r in replicas))
    assert sum(won) == 1
    assert [r.is_held() for r in replicas] == list(won)


async def test_an_expired_lease_goes_to_the_next_with_a_larger_token(
    backends: tuple[LeaseBackend, LeaseBackend],
) -> None:
    lease = name()
    a, b = Lease(lease, "a", TTL, backends[0]), Lease(lease, "b", TTL, backends[1])
    assert await a.acquire()
    first = a.token
    assert first is not None
    await until(lambda: not a.is_held())  # a stops believing it holds before b can take it
    await until_acquired(b)
    assert b.token is not None and b.token > first


async def until_acquired(lease: Lease, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await lease.acquire():
        assert time.monotonic() < deadline, f"{lease} not acquired in time"
        await asyncio.sleep(0.05)


async def test_renewal_after_loss_is_refused(backends: tuple[LeaseBackend, LeaseBackend]) -> None:
    lease = name()
    a, b = Lease(lease, "a", TTL, backends[0]), Lease(lease, "b", TTL, backends[1])
    assert await a.acquire()
    old = a._held
    assert old is not None
    await until(lambda: not a.is_held())
    await until_acquired(b)
    assert not await a.renew()  # refused without asking: a lost lease stays lost
    assert not a.is_held()
    # and the backend itself refuses a renewal of the old holding, even one that reaches it late
    assert await backends[0].renew(lease, "a", old, TTL) is None
    assert b.is_held()


async def test_tokens_grow_with_every_acquisition(backends: tuple[LeaseBackend, LeaseBackend]) -> None:
    lease = name()
    tokens: list[int] = []
    for i in range(4):
        holder = Lease(lease, f"h{i}", TTL, backends[i % 2])
        await until_acquired(holder)
        assert holder.token is not None
        tokens.append(holder.token)
        await holder.release()  # the next one need not wait for the expiry
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)


async def test_run_holds_the_lease_alone_and_hands_it_over_on_stop(
    backends: tuple[LeaseBackend, LeaseBackend],
) -> None:
    lease = name()
    a, b = Lease(lease, "a", TTL, backends[0]), Lease(lease, "b", TTL, backends[1])
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    task_a = asyncio.create_task(a.run(stop_a))
    await until(a.is_held)
    task_b = asyncio.create_task(b.run(stop_b))
    for _ in range(60):  # for a while (several ttls when the machine is idle): never both at once
        assert not (a.is_held() and b.is_held())
        await asyncio.sleep(0.05)
    stop_a.set()
    await task_a
    await until(b.is_held)
    stop_b.set()
    await task_b
    assert not b.is_held()
