"""One simulate worker process for ``benchmarks/simulate_queue.py``: the configuration's detectors,
``build_simulation_worker`` on its JetStream bus, until SIGTERM. Prints ``ready`` once it takes items.

    python -m benchmarks._simulate_worker CONFIG
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from breakglass.bus.jetstream import JetStreamBus
from breakglass.bus.workqueue import JetStreamWorkQueue
from breakglass.config import load_config
from breakglass.detect.service import build_watcher
from breakglass.simulate import build_simulation_worker
from breakglass.simulate.worker import QUEUE


async def main(config: Path) -> None:
    loaded = load_config(config)
    settings = loaded.settings.bus
    assert settings.url is not None
    bus = await JetStreamBus(settings.url.get_secret_value(), prefix=settings.prefix).connect()
    watcher = build_watcher(loaded, bus)
    worker = build_simulation_worker(loaded, watcher, bus, JetStreamWorkQueue(bus, QUEUE))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await worker.start()
    print("ready", flush=True)
    try:
        await worker.run(stop)
    finally:
        await watcher.close()
        await bus.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
