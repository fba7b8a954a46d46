"""Both sides of the simulate work queue apart from NATS: the watcher's simulator submits each new
transaction once (with when it was seen and the head) instead of judging it, and judges it itself
when the queue is unreachable; a worker judges an item, publishes its findings under their
fingerprint as dedup name and reports the verdict.

The queue over a real server, its workers real processes: ``tests/bus/test_workqueue.py``."""

from __future__ import annotations

import time
from typing import Any

from test_simulator import FakeNode, pending, simulator

from breakglass.bus import InProcessBus, Topics
from breakglass.domain import FindingStage, PendingTx
from breakglass.messages.pending import PendingVerdict, PendingWork
from breakglass.simulate.worker import SimulationWorker, submitter


class FakeQueue:
    def __init__(self, *, fail: bool = False) -> None:
        self.items: list[tuple[PendingWork, str]] = []
        self.verdicts: list[PendingVerdict] = []
        self.fail = fail

    async def submit(self, item: Any, key: str) -> None:
        if self.fail:
            raise ConnectionError("NATS is away")
        self.items.append((item, key))

    async def report(self, verdict: Any) -> None:
        self.verdicts.append(verdict)


async def test_the_watcher_submits_each_new_transaction_once_with_when_and_where_it_was_seen() -> None:
    node = FakeNode(5_000)
    sim = simulator(node)
    queue = FakeQueue()
    sim.submit = submitter(queue, sim)  # type: ignore[arg-type]
    sim.new_head(41)
    seen = time.monotonic() * 1000.0 - 250.0  # seen a quarter of a second ago
    first = pending(4_500, tip=3, tag=1)
    await sim.handle(PendingTx(first.tx, seen))
    await sim.handle(PendingTx(first.tx, seen))  # both watcher paths: once
    await sim.handle(pending(4_500, tip=9, tag=2))  # a replacement paying more: again
    await sim.drain()
    assert [(w.tx.hash, key) for w, key in queue.items] == [
        (first.tx.hash, f"31337:{first.tx.hash}"),
        (pending(0, tag=2).tx.hash, f"31337:{pending(0, tag=2).tx.hash}"),
    ]
    work = queue.items[0][0]
    assert work.head == 41 and work.chain_id == 31337 and work.tx == first.tx
    assert abs(time.time() * 1000.0 - work.seen_at - 250.0) < 100.0  # wall clock, not monotonic
    assert node.simulations == 0 and sim.submitted == 2


async def test_a_transaction_the_queue_cannot_take_is_judged_by_the_watcher_itself() -> None:
    node = FakeNode(5_000)
    sim = simulator(node)
    sim.submit = submitter(FakeQueue(fail=True), sim)  # type: ignore[arg-type]
    await sim.handle(pending(4_500))
    await sim.drain()
    assert node.simulations == 1 and sim.stats.flagged == 1


async def test_a_worker_publishes_an_items_findings_once_and_reports_its_verdict() -> None:
    bus = InProcessBus()
    findings = bus.subscribe(Topics.FINDINGS, "respond")
    node = FakeNode(5_000)
    queue = FakeQueue()
    worker = SimulationWorker(None, simulator(node, bus=bus), queue, name="w1")  # type: ignore[arg-type]
    item = PendingWork(pending(4_500).tx, seen_at=time.time() * 1000.0 - 40.0, head=7, chain_id=31337)
    verdict = await worker.handle(item)
    await worker.handle(item)  # redelivered after its worker died: judged again, published once
    assert verdict is not None and len(queue.verdicts) == 2 and queue.verdicts[0] == verdict
    assert verdict.worker == "w1" and verdict.relevance == "contract" and verdict.error is None
    assert 40.0 <= verdict.latency_ms < 5_000.0
    got = [await anext(findings) for _ in range(2)]
    assert {f.monitor_id for f in got} == {"floor", "drain"}
    assert all(f.stage is FindingStage.PENDING and f.tx_hash == item.tx.hash for f in got)
    assert set(verdict.findings) == {f.fingerprint for f in got}
    await bus.publish(Topics.FINDINGS, "end")
    assert await anext(findings) == "end"  # the second judgement published nothing
    await bus.close()


class QueueState:
    """What ``SimulationWorker.ready`` reads of its queue."""

    def __init__(self, *, running: bool, idle: float, waiting: int) -> None:
        self.running = running
        self.last_error = None if running else "ConnectionClosedError"
        self.restarts = 0 if running else 3
        self.last_progress_at = time.monotonic() - idle
        self._waiting = waiting

    async def waiting(self) -> int:
        return self._waiting


async def test_a_worker_is_ready_while_it_takes_items_and_is_not_stuck_with_items_waiting() -> None:
    def worker(queue: QueueState) -> SimulationWorker:
        return SimulationWorker(None, None, queue)  # type: ignore[arg-type]

    assert (await worker(QueueState(running=True, idle=1.0, waiting=50)).ready()).ok
    assert (await worker(QueueState(running=True, idle=600.0, waiting=0)).ready()).ok  # idle, nothing to do
    stuck = await worker(QueueState(running=True, idle=600.0, waiting=7)).ready()
    assert not stuck.ok and "7 waiting" in stuck.detail
    down = await worker(QueueState(running=False, idle=1.0, waiting=0)).ready()
    assert not down.ok and "ConnectionClosedError" in down.detail and "3 restarts" in down.detail
