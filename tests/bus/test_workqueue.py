"""The simulate work queue over a real NATS JetStream server, its workers real OS processes: the
items are shared, each done once; a worker SIGKILLed holding an item has it redone by another, and
its result travels once even when it had published it before dying.

Needs ``BREAKGLASS_TEST_NATS_URL`` (CI sets it). Each test has its own stream prefix, deleted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from breakglass.domain import Address, Hash32, Tx
from breakglass.messages.pending import PendingVerdict, PendingWork
from breakglass.testing import service_url

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("queue_worker.py")


def work(n: int) -> PendingWork:
    tx = Tx(Hash32("0x" + f"{n:064x}"), Address("0x" + "11" * 20), Address("0x" + "22" * 20), 0, b"\x01",
            n, 100_000, 10**10, 10**9, None, 0)  # fmt: skip
    return PendingWork(tx, seen_at=0.0, head=100, chain_id=31337)


class Worker:
    """``queue_worker.py`` in its own process; ``took`` collects the hashes it printed."""

    def __init__(self, url: str, prefix: str, name: str, *hang: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), url, prefix, name, *hang],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(asyncio.to_thread(self._read))
        self.loop = asyncio.get_running_loop()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            self.loop.call_soon_threadsafe(self.changed.set)

    @property
    def took(self) -> list[str]:
        return [line.split()[1] for line in self.lines if line.startswith("took ")]

    async def printed(self, line: str, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while line not in self.lines:
                self.changed.clear()
                await self.changed.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@contextlib.asynccontextmanager
async def queue_and_bus() -> AsyncIterator[tuple[Any, Any, str, str]]:
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    from breakglass.bus.jetstream import JetStreamBus
    from breakglass.bus.workqueue import JetStreamWorkQueue

    prefix = f"bgtest_{uuid.uuid4().hex[:10]}"
    bus = await JetStreamBus(url, prefix=prefix).connect()
    queue = await JetStreamWorkQueue(bus, "simulate", ack_wait=1.0).open()
    try:
        yield bus, queue, url, prefix
    finally:
        _nc, js = bus.connection()
        for stream in (prefix, queue.stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await bus.close()


async def verdicts_until(queue: Any, wanted: set[str], into: list[PendingVerdict]) -> None:
    async for verdict in queue.verdicts():
        into.append(verdict)
        if wanted <= {v.tx_hash for v in into}:
            return


async def findings_stored(bus: Any, findings: Any) -> Counter[str]:
    """The findings the bus stream holds, counted by transaction hash (read back through
    ``findings``, a subscription taken before any was published)."""
    _nc, js = bus.connection()
    stored = (await js.stream_info(bus.prefix)).state.messages
    out: Counter[str] = Counter()
    async with asyncio.timeout(30):
        async for finding in findings:
            out[finding.tx_hash] += 1
            if sum(out.values()) == stored:
                break
    await findings.aclose()
    return out


async def test_workers_in_separate_processes_share_the_items_and_do_each_once() -> None:
    async with queue_and_bus() as (bus, queue, url, prefix):
        findings = bus.subscribe("findings", "counter")
        workers = [Worker(url, prefix, f"w{i}") for i in range(3)]
        try:
            for worker in workers:
                await worker.printed("ready")
            items = [work(n) for n in range(60)]
            verdicts: list[PendingVerdict] = []
            listening = asyncio.create_task(verdicts_until(queue, {w.tx.hash for w in items}, verdicts))
            await asyncio.sleep(0.2)  # the verdict listener subscribes (a watcher: it may miss some)
            for item in items:
                await queue.submit(item, item.key)
                await queue.submit(item, item.key)  # submitted twice (two watchers): queued once
            await asyncio.wait_for(listening, 60)
        finally:
            for worker in workers:
                worker.stop()
        took = Counter(h for worker in workers for h in worker.took)
        assert set(took) == {w.tx.hash for w in items} and set(took.values()) == {1}
        assert sum(1 for worker in workers if worker.took) >= 2  # shared, not one worker doing all
        assert await findings_stored(bus, findings) == Counter({w.tx.hash: 1 for w in items})
        assert await queue.waiting() == 0


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_worker_killed_holding_an_item_has_it_redone_by_another_and_one_finding_travels(
    when: str,
) -> None:
    # before: killed mid-item, nothing published yet; after: killed between publishing its finding
    # and acknowledging the item, so the one redoing it publishes the finding again (dropped by the bus)
    async with queue_and_bus() as (bus, queue, url, prefix):
        findings = bus.subscribe("findings", "counter")
        victim_item = work(1000)
        victim = Worker(url, prefix, "victim", victim_item.tx.hash, when)
        others: list[Worker] = []
        try:
            await victim.printed("ready")
            await queue.submit(victim_item, victim_item.key)
            await victim.printed(f"took {victim_item.tx.hash}")
            if when == "after":
                await victim.printed(f"published {victim_item.tx.hash}")
            others = [Worker(url, prefix, f"w{i}") for i in range(2)]
            for worker in others:
                await worker.printed("ready")
            items = [work(n) for n in range(20)]
            verdicts: list[PendingVerdict] = []
            wanted = {w.tx.hash for w in [*items, victim_item]}
            listening = asyncio.create_task(verdicts_until(queue, wanted, verdicts))
            await asyncio.sleep(0.2)
            for item in items:
                await queue.submit(item, item.key)
            victim.proc.send_signal(signal.SIGKILL)
            victim.stop()
            await asyncio.wait_for(listening, 60)
        finally:
            for worker in [victim, *others]:
                worker.stop()
        redone_by = [w.name for w in others if victim_item.tx.hash in w.took]
        assert len(redone_by) == 1, [w.took for w in others]
        assert [v.worker for v in verdicts if v.tx_hash == victim_item.tx.hash] == redone_by
        stored = await findings_stored(bus, findings)
        assert stored[victim_item.tx.hash] == 1
        assert stored == Counter({w.tx.hash: 1 for w in [*items, victim_item]})
        assert await queue.waiting() == 0


async def test_the_backlog_counts_items_not_done_and_ages_the_oldest_and_metrics_export_it() -> None:
    from prometheus_client import REGISTRY

    from breakglass.health import Health
    from breakglass.metrics.refresh import MetricsRefresher

    async with queue_and_bus() as (bus, queue, url, prefix):
        refresher = MetricsRefresher(None, bus, Health(), queues=[queue])

        def gauge(name: str) -> float | None:
            return REGISTRY.get_sample_value(name, {"stream": queue.stream})

        assert await queue.backlog() == (0, 0.0)
        items = [work(n) for n in range(3)]
        for item in items:
            await queue.submit(item, item.key)
        await asyncio.sleep(0.3)  # the oldest item ages
        waiting, oldest = await queue.backlog()
        assert waiting == 3 and 0.2 < oldest < 30
        await refresher.refresh()
        assert gauge("breakglass_work_queue_pending_items") == 3
        assert (gauge("breakglass_work_queue_oldest_age_seconds") or 0) > 0.2
        worker = Worker(url, prefix, "w0")
        try:
            await worker.printed("ready")
            async with asyncio.timeout(60):
                while (await queue.backlog())[0]:
                    await asyncio.sleep(0.05)
        finally:
            worker.stop()
        assert await queue.backlog() == (0, 0.0)
        await refresher.refresh()
        assert gauge("breakglass_work_queue_pending_items") == 0
        assert gauge("breakglass_work_queue_oldest_age_seconds") == 0
