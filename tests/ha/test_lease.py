"""Leader leases: one holder at a time, a larger fencing token for every acquisition, a lost lease
never renewed. The same tests on each backend: this process's memory, NATS JetStream key-value and
PostgreSQL (real servers, ``BREAKGLASS_TEST_NATS_URL`` / ``BREAKGLASS_TEST_POSTGRES_URL``)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from breakglass.ha import Lease, LeaseBackend, MemoryLeaseBackend
from breakglass.testing import drop_lease_buckets, postgres_database, service_url

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
            await drop_lease_buckets(url, prefix)


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


# -- a busy event loop: renewal from a thread of its own, fencing by the holder's own clock ----------
# (``lease_backends``, in tests/conftest.py: a new backend on one real server per call)


class Sink:
    """What the replicas 'send': (who, fencing token), in the order they sent it (list.append is
    atomic across threads). A send happens only right after the sender's own fencing check."""

    def __init__(self) -> None:
        self.sends: list[tuple[str, int]] = []

    def send_if_leading(self, who: str, lease: Lease) -> bool:
        token = lease.token  # the fencing check, as the relayer's before a broadcast
        if token is not None:
            self.sends.append((who, token))
        return token is not None

    def assert_one_actor_at_a_time(self) -> None:
        """Tokens never go back, and a token is one sender's: no two actors interleave."""
        tokens = [token for _, token in self.sends]
        assert tokens == sorted(tokens), self.sends
        owners: dict[int, set[str]] = {}
        for who, token in self.sends:
            owners.setdefault(token, set()).add(who)
        assert all(len(who) == 1 for who in owners.values()), owners


async def send_while_leading(who: str, lease: Lease, sink: Sink, stop: asyncio.Event) -> None:
    while not stop.is_set():
        sink.send_if_leading(who, lease)
        await asyncio.sleep(0.02)


class OtherProcess:
    """A standby replica on an event loop in a thread of its own: it runs while the test's loop is
    blocked, as another process would."""

    def __init__(self, lease: Lease, sink: Sink) -> None:
        self.lease = lease
        self._sink = sink
        self._halt = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        stop = asyncio.Event()
        who = self.lease.holder_id
        tasks = [asyncio.create_task(self.lease.run(stop)),
                 asyncio.create_task(send_while_leading(who, self.lease, self._sink, stop))]  # fmt: skip
        while not self._halt.is_set():
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.gather(*tasks)

    def __enter__(self) -> OtherProcess:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join(10)
        assert not self._thread.is_alive()


def block_the_loop(seconds: float) -> None:
    """A stage that holds the event loop and the interpreter: pure Python work, no await."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))


async def test_a_busy_event_loop_keeps_its_lease_renewed_from_the_thread(
    lease_backends: Callable[[], LeaseBackend],
) -> None:
    lease, sink, ttl = name(), Sink(), 2 * TTL  # renewals have 1.3 s to come back on a loaded machine
    leader = Lease(lease, "leader", ttl, lease_backends(), renewer=lease_backends, stall_limit=4 * ttl)
    stop = asyncio.Event()
    keeper = asyncio.create_task(leader.run(stop))
    sender = asyncio.create_task(send_while_leading("leader", leader, sink, stop))
    await until(leader.is_held)
    token = leader.token
    standby_lease = Lease(lease, "standby", ttl, lease_backends(), renewer=lease_backends)
    with OtherProcess(standby_lease, sink) as standby:
        await asyncio.sleep(ttl)  # the standby is trying to acquire
        block_the_loop(2.5 * ttl)  # renewals on this loop would have lost the lease twice over
        assert leader.is_held() and leader.token == token
        await asyncio.sleep(ttl)
        assert leader.token == token
        assert standby.lease.acquisitions == 0
    stop.set()
    await asyncio.gather(keeper, sender)
    assert {who for who, _ in sink.sends} == {"leader"}
    sink.assert_one_actor_at_a_time()


async def test_a_loop_stalled_past_the_limit_loses_the_lease_and_its_holder_stops_by_its_own_clock(
    lease_backends: Callable[[], LeaseBackend],
) -> None:
    lease, sink = name(), Sink()
    leader = Lease(lease, "leader", TTL, lease_backends(), renewer=lease_backends, stall_limit=TTL)
    stop = asyncio.Event()
    keeper = asyncio.create_task(leader.run(stop))
    await until(leader.is_held)
    old = leader.token
    assert old is not None
    standby_lease = Lease(lease, "standby", TTL, lease_backends(), renewer=lease_backends)
    with OtherProcess(standby_lease, sink) as standby:
        assert sink.send_if_leading("leader", leader)
        block_the_loop(4 * TTL)  # past the stall limit + ttl: the standby takes over meanwhile
        # the first thing the old leader does after the stall: its fencing check refuses
        assert not sink.send_if_leading("leader", leader)
        assert leader.stalls >= 1
        await until(lambda: standby.lease.token is not None)
        assert standby.lease.token is not None and standby.lease.token > old
        sender = asyncio.create_task(send_while_leading("leader", leader, sink, stop))
        await asyncio.sleep(2 * TTL)  # the old leader is a standby now (unless the standby lost it)
    stop.set()
    await asyncio.gather(keeper, sender)
    assert standby.lease.acquisitions >= 1
    assert {who for who, _ in sink.sends} >= {"leader", "standby"}
    assert sink.sends[0] == ("leader", old)
    sink.assert_one_actor_at_a_time()
