"""Pending-transaction simulation as a work queue: the ``simulate`` role's workers and the watcher's side.

With the in-process bus the mempool watcher's own ``PendingSimulator`` judges every transaction (one
process, as before). On a bus across machines (JetStream) the judging is shared:

- the ``detect`` role's ``MempoolService`` keeps watching the mempool and remembering what it handed
  over (a transaction once, a replacement again), and submits each new one as a ``PendingWork``
  (``messages.pending``: the transaction, when it was seen, the head it was seen at) to the
  ``simulate`` work queue (``bus/workqueue.py``), keyed by chain and hash: submitted twice, queued once;
- each ``simulate`` process runs a ``SimulationWorker``: up to ``mempool.max_in_flight`` items at a time,
  each judged by its own ``PendingSimulator.judge_one`` (relevance, one ``eth_simulateV1``, the
  detectors on the post-state), its findings published on ``Topics.FINDINGS`` for the responder
  under their fingerprint as ``dedup`` name, then a ``PendingVerdict`` reported, then the item
  acknowledged. A worker killed mid-item has the item redone by another after the queue's
  ``ack_wait`` (5 s); one killed after publishing its findings has them dropped as duplicates by
  the bus: one finding either way.

A worker judges with the detectors of its own process. Flows peek at their window, which the block
path fills: in a ``simulate`` process that does not follow blocks (no ``detect`` role) the window is
empty, so a pending transaction's outflow is judged alone against the flow's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from breakglass.bus import Bus
from breakglass.bus.consumer import STALL_SECONDS
from breakglass.detect.service import Watcher
from breakglass.domain import PendingTx
from breakglass.errors import ChainError
from breakglass.health import CheckResult
from breakglass.messages.pending import PendingVerdict, PendingWork
from breakglass.simulate.simulator import PendingSimulator

if TYPE_CHECKING:  # nats-py is only needed when a bus across machines is configured
    from breakglass.bus.workqueue import JetStreamWorkQueue

__all__ = ["QUEUE", "PendingSubmit", "SimulationWorker", "submitter", "work_queue_for"]

PendingSubmit = Callable[[PendingTx], Awaitable[None]]

QUEUE = "simulate"
"""The work queue's name: stream ``<prefix>-work-simulate``, consumer ``simulate-workers``."""


def work_queue_for(bus: Bus, chain: str | None = None) -> JetStreamWorkQueue | None:
    """The simulate work queue of ``bus`` when it reaches across machines (JetStream); None on the
    in-process bus, whose process judges every pending transaction itself. A configuration of several
    chains has one queue per ``chain`` (``simulate-<chain>``): a worker judges its own chain's."""
    if "breakglass.bus.jetstream" not in sys.modules:  # no JetStream bus exists: nats-py stays unloaded
        return None
    from breakglass.bus.jetstream import JetStreamBus
    from breakglass.bus.workqueue import JetStreamWorkQueue

    if not isinstance(bus, JetStreamBus):
        return None
    name = QUEUE if chain is None else f"{QUEUE}-{re.sub(r'[^A-Za-z0-9_-]', '_', chain)}"
    return JetStreamWorkQueue(bus, name)


def submitter(queue: JetStreamWorkQueue, simulator: PendingSimulator) -> PendingSubmit:
    """The watcher's side: ``PendingSimulator.submit`` that queues each new transaction."""

    async def submit(pending: PendingTx) -> None:
        # ``seen_at_ms`` is this process's monotonic clock: carried as wall time to another machine
        seen_at = time.time() * 1000.0 - (time.monotonic() * 1000.0 - pending.seen_at_ms)
        chain_id = simulator.judge.chain_id
        work = PendingWork(pending.tx, seen_at=seen_at, head=simulator.head, chain_id=chain_id)
        await queue.submit(work, work.key)

    return submit


@dataclass
class SimulationWorker:
    """One ``simulate`` process's worker: ``run(stop)`` takes items until ``stop`` is set."""

    watcher: Watcher
    simulator: PendingSimulator
    queue: JetStreamWorkQueue
    concurrency: int = 32
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"{socket.gethostname()}:{os.getpid()}"

    async def start(self) -> None:
        """Resolve the chain id and open the queue (the bus is connected by ``App.start``)."""
        if not self.watcher.engine.chain_id:
            await self.watcher.start()
        self.simulator.judge.chain_id = self.watcher.engine.chain_id
        await self.queue.open()

    async def handle(self, work: PendingWork) -> PendingVerdict | None:
        """Judge one item: findings on the bus (once), then its verdict to the watchers."""
        if not isinstance(work, PendingWork):
            return None
        if work.chain_id != self.simulator.judge.chain_id:
            raise ChainError(f"work for chain {work.chain_id} reached a worker of chain "
                             f"{self.simulator.judge.chain_id}")  # fmt: skip
        if work.head >= 0:
            self.simulator.new_head(work.head)
        seen_ms = time.monotonic() * 1000.0 - (time.time() * 1000.0 - work.seen_at)
        verdict = await self.simulator.judge_one(PendingTx(work.tx, seen_ms))
        out = PendingVerdict(
            tx_hash=verdict.tx_hash,
            relevance=verdict.relevance.value,
            findings=tuple(f.fingerprint for f in verdict.findings),
            latency_ms=round(verdict.latency_ms, 3),
            worker=self.name,
            error=verdict.error,
        )
        await self.queue.report(out)
        return out

    async def ready(self) -> CheckResult:
        """Readiness (``/readyz`` check ``simulate``): taking items, and not stuck with items waiting
        (none finished for ``STALL_SECONDS`` while the queue holds some)."""
        queue = self.queue
        if not queue.running:
            cause = f" after {queue.last_error}" if queue.last_error else ""
            return CheckResult(False, f"simulate worker not taking items{cause} ({queue.restarts} restarts)")
        idle = time.monotonic() - (queue.last_progress_at or 0.0)
        if idle > STALL_SECONDS:
            try:
                waiting = await queue.waiting()
            except Exception as exc:  # the server's answer is what is asked: say what failed, not why
                return CheckResult(False, f"simulate queue unreadable: {type(exc).__name__}")
            if waiting:
                stuck = f"simulate worker finished nothing for {idle:.0f} s, {waiting} waiting"
                return CheckResult(False, stuck)
        return CheckResult(True)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        await self.start()
        tasks = [
            asyncio.create_task(self.queue.work(self.handle, concurrency=self.concurrency)),
            asyncio.create_task(self.simulator.run(stop)),  # the head watchdog (cache lifetime)
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ChainError):
                    await task
