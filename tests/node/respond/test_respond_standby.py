"""Active/standby responder replicas on a real anvil (in one test process; ``tests/e2e/ha`` does it
with real OS processes): only the lease holder sends, a replica that lost the lease sends nothing,
and the one taking over sends what is still owed, each call once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from respond_support import Harness, Venue, finding
from test_respond_exactly_once import Crash

from breakglass.bus import Topics
from breakglass.ha import Lease, LeaseBackend, MemoryLeaseBackend
from breakglass.respond import ActionStep, HttpRpc, Responder
from breakglass.respond.relayer import NotLeader

pytestmark = pytest.mark.node

TTL = 1.0


class DiesOnSecondSend(HttpRpc):
    """The leader's node connection: the process dies as its second transaction is about to leave."""

    sends = 0

    async def call(self, method: str, *params: Any) -> Any:
        if method == "eth_sendRawTransaction":
            self.sends += 1
            if self.sends == 2:
                raise Crash
        return await super().call(method, *params)


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def acquired(lease: Lease, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await lease.acquire():
        assert time.monotonic() < deadline, f"{lease} not acquired in time"
        await asyncio.sleep(0.05)


async def finished_once(standby: Responder, venue: Venue) -> None:
    """What the standby owes after taking over, confirmed: the market and the venue paused by three
    calls (block, pause market, pause venue) sent as three transactions, each signed once."""
    relayer = standby.relayer
    assert relayer is not None
    for key in relayer.pending():
        assert (await relayer.wait(key)).step is ActionStep.CONFIRMED
    assert venue.view("paused") and venue.view("marketPaused", 7)
    assert venue.guardian_nonce() == 3  # three calls, three transactions: nothing twice, nothing lost
    rows = await standby.ledger.rows(steps=(ActionStep.SIGNED,))
    assert len(rows) == 3 and len({r.key for r in rows}) == 3


async def test_the_standby_finishes_an_incident_the_killed_leader_left_half_done(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    harness = harness_factory(venue)  # block the attacker, pause the market, pause the venue, notify
    backend = MemoryLeaseBackend()
    leader = await harness.responder(start=False, rpc=DiesOnSecondSend(venue.node.url))
    standby = await harness.responder(start=False)
    leader.use_lease(Lease("respond", "leader", TTL, backend))
    standby.use_lease(Lease("respond", "standby", TTL, backend))
    standby.subscribe()  # it listens to findings without taking them
    hearing = asyncio.create_task(standby._hear())
    try:
        assert leader.lease is not None and standby.lease is not None
        assert await leader.lease.acquire() and not await standby.lease.acquire()
        await leader.take_over()
        attack = finding()
        await harness.bus.publish(Topics.FINDINGS, attack)
        await until(lambda: len(standby._heard) == 1)
        with pytest.raises(Crash):  # blocked the attacker; died sending the market pause (signed, claimed)
            await leader.handle(attack)
        assert venue.guardian_nonce() == 1

        # the standby cannot act while the dead leader's lease lasts
        with pytest.raises(NotLeader):
            await standby.take_over()
        await acquired(standby.lease)
        report = await standby.take_over()
        assert report["in_flight"] == 1 and report["replayed"] == 1  # the signed pause; the venue pause
        await finished_once(standby, venue)

        # the old leader, still running somewhere, finds itself fenced: it sends nothing
        assert not leader.lease.is_held()
        other = finding(market="8", attacker="0x" + "0b" * 20, tx="0x" + "ef" * 32)
        events = await leader.handle(other)
        assert all(e.step is ActionStep.INTENT for e in events)  # not recorded, not sent
        assert venue.guardian_nonce() == 3
    finally:
        hearing.cancel()


async def test_a_late_claim_under_an_old_token_is_refused_by_the_store(
    venue: Venue, harness_factory: Callable[..., Harness]
) -> None:
    """A leader paused past its lease (its own clock said it still held it) claims in the store: the
    store has seen the successor's newer token and refuses; nothing is signed twice."""
    harness = harness_factory(venue)
    backend = MemoryLeaseBackend()
    old = await harness.responder(start=False)
    new = await harness.responder(start=False)
    old.use_lease(Lease("respond", "old", TTL, backend))
    new.use_lease(Lease("respond", "new", TTL, backend))
    assert old.lease is not None and new.lease is not None
    assert await old.lease.acquire()
    await old.take_over()
    stale_token = old.lease.token
    await until(lambda: not old.lease.is_held())  # type: ignore[union-attr]
    await acquired(new.lease)
    await new.take_over()
    [*_, sent, note] = await new.handle(finding())
    assert sent.step is ActionStep.SUBMITTED and note.step is ActionStep.NOTIFY
    assert old.relayer is not None
    old.relayer.fence = lambda: stale_token  # as if its clock had not moved
    events = await old.handle(finding(market="8", attacker="0x" + "0b" * 20, tx="0x" + "ef" * 32))
    assert {e.step for e in events} <= {ActionStep.FAILED, ActionStep.INTENT, ActionStep.SATISFIED}
    failed = [e for e in events if e.step is ActionStep.FAILED]
    assert failed and all("fencing token" in e.detail["error"] for e in failed)
    assert venue.guardian_nonce() == 3  # only the new leader's three calls


class StallsTheLoop(HttpRpc):
    """The leader's node connection: at the first ``method`` call after ``arm``, its process's event
    loop is held (synchronous work, no await) for ``seconds``, as a stage stuck on the loop would."""

    method: str | None = None
    seconds = 0.0

    def arm(self, method: str, seconds: float) -> None:
        self.method, self.seconds = method, seconds

    async def call(self, method: str, *params: Any) -> Any:
        if method == self.method:
            self.method = None
            end = time.monotonic() + self.seconds
            while time.monotonic() < end:
                sum(range(1000))
        return await super().call(method, *params)


@pytest.mark.parametrize("stall_at", ["eth_estimateGas", "eth_sendRawTransaction"])
async def test_a_leader_whose_event_loop_stalls_past_its_lease_mid_incident_sends_nothing_twice(
    venue: Venue,
    harness_factory: Callable[..., Harness],
    lease_backends: Callable[[], LeaseBackend],
    stall_at: str,
) -> None:
    """Real NATS / PostgreSQL leases renewed from their threads. The leader's loop stalls past the
    stall limit and the lease, as it simulates the first call (before it claims) or as it broadcasts
    it (claimed and signed, the fencing checks passed): the standby's lease thread acquires meanwhile
    (its process is not the stalled one: a large stall limit stands for that here). After the stall
    the old leader refuses at its next fencing check; the standby sends what is owed; on chain every
    call once."""
    harness = harness_factory(venue)  # block the attacker, pause the market, pause the venue, notify
    rpc = StallsTheLoop(venue.node.url)
    leader = await harness.responder(start=False, rpc=rpc)
    standby = await harness.responder(start=False)
    name = f"respond-stall-{time.monotonic_ns()}"
    leader.use_lease(Lease(name, "leader", TTL, lease_backends(), renewer=lease_backends, stall_limit=TTL))
    standby.use_lease(Lease(name, "standby", TTL, lease_backends(), renewer=lease_backends, stall_limit=3600))
    assert leader.lease is not None and standby.lease is not None
    stop = asyncio.Event()
    keepers = [asyncio.create_task(leader.lease.run(stop))]
    standby.subscribe()
    hearing = asyncio.create_task(standby._hear())
    try:
        await until(leader.lease.is_held)
        keepers.append(asyncio.create_task(standby.lease.run(stop)))
        await leader.take_over()
        attack = finding()
        await harness.bus.publish(Topics.FINDINGS, attack)
        await until(lambda: len(standby._heard) == 1)
        old_token = leader.lease.token
        rpc.arm(stall_at, 4 * TTL)
        events = await leader.handle(attack)  # stalls inside; then its fencing checks refuse
        assert not leader.lease.is_held() and leader.lease.stalls >= 1
        sent = [e for e in events if e.step is ActionStep.SUBMITTED]
        assert len(sent) == (1 if stall_at == "eth_sendRawTransaction" else 0), events
        assert standby.lease.token is not None and old_token is not None and standby.lease.token > old_token

        report = await standby.take_over()
        assert report["replayed"] == 1  # the finding it heard, unfinished in the ledger
        await finished_once(standby, venue)
    finally:
        stop.set()
        await asyncio.gather(*keepers, return_exceptions=True)
        hearing.cancel()
