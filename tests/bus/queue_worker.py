"""A work-queue worker in its own OS process, for ``test_workqueue.py``: takes ``PendingWork`` items,
publishes one finding per item on ``findings`` (under its fingerprint as dedup name, as the simulate
worker does), reports a verdict. Prints ``took <hash>`` for every item it takes.

    python queue_worker.py NATS_URL PREFIX NAME [HANG_ON_HASH before|after]

With a hash, it hangs on that item (holding it, never acknowledging it) before or after publishing
its finding, until it is killed.
"""

from __future__ import annotations

import asyncio
import sys

from breakglass.bus.jetstream import JetStreamBus
from breakglass.bus.workqueue import JetStreamWorkQueue
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.messages.pending import PendingVerdict, PendingWork


async def main(url: str, prefix: str, name: str, hang_on: str | None, when: str | None) -> None:
    bus = await JetStreamBus(url, prefix=prefix).connect()
    queue = await JetStreamWorkQueue(bus, "simulate", ack_wait=1.0).open()

    async def handle(work: PendingWork) -> None:
        print(f"took {work.tx.hash}", flush=True)
        finding = Finding("drain", Severity.CRITICAL, work.chain_id, work.head + 1, "drain",
                          stage=FindingStage.PENDING, tx_hash=work.tx.hash)  # fmt: skip
        if work.tx.hash == hang_on and when == "before":
            await asyncio.Event().wait()
        await bus.publish("findings", finding, dedup=finding.fingerprint)
        if work.tx.hash == hang_on and when == "after":
            print(f"published {work.tx.hash}", flush=True)
            await asyncio.Event().wait()
        await queue.report(PendingVerdict(work.tx.hash, "protocol", (finding.fingerprint,), 0.0, name))

    print("ready", flush=True)
    await queue.work(handle, concurrency=4)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], args[2], *(args[3:5] if len(args) > 3 else (None, None))))
