"""The ``simulate`` role alone in its own OS process, for ``test_work_queue_defense.py``: the mempool
watcher submitting to the JetStream work queue and a worker of that queue, built as ``build_app``
builds them on a JetStream bus, until SIGTERM. Prints ``ready`` once its pending subscription is live.

    python simulate_role.py CONFIG
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from breakglass.bus.jetstream import JetStreamBus
from breakglass.config import load_config
from breakglass.detect.service import build_watcher
from breakglass.simulate import build_mempool
from breakglass.simulate.worker import work_queue_for


async def main(config: Path) -> None:
    loaded = load_config(config)
    settings = loaded.settings.bus
    assert settings.url is not None
    bus = await JetStreamBus(settings.url.get_secret_value(), prefix=settings.prefix).connect()
    watcher = build_watcher(loaded, bus)
    service = build_mempool(loaded, watcher, bus, queue=work_queue_for(bus), worker=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = asyncio.create_task(service.run(stop))
    subscribed = asyncio.create_task(service.mempool.subscribed.wait())
    await asyncio.wait([running, subscribed], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # it failed: say why
    print("ready" if subscribed.done() else "not subscribed", flush=True)
    try:
        await running
    finally:
        await watcher.close()
        await bus.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
