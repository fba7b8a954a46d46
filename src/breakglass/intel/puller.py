"""Pulling peers' intel on a schedule inside ``breakglass serve`` (``intel.pull_minutes``): what
``breakglass intel pull`` does, at start and then every interval, off the event loop. The intel
monitors see the new store on their next block; refusals are counted in this process's metrics,
which Prometheus scrapes (``breakglass_intel_bundles_total``)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from breakglass.config import LoadedConfig
from breakglass.errors import IntelError
from breakglass.intel.feed import SourceReport, pull_sources
from breakglass.logs import get_logger

__all__ = ["IntelPuller"]

log = get_logger(__name__)


class IntelPuller:
    def __init__(self, config: LoadedConfig) -> None:
        from breakglass.detect.build import intel_store_of

        minutes = config.settings.intel.pull_minutes
        assert minutes is not None  # built only when configured (app.build_app)
        self.interval = minutes * 60
        self.sources = list(config.settings.intel.sources)
        self.base = config.path.parent
        self.store = intel_store_of(config)
        self.last: list[SourceReport] = []
        """The reports of the last pull."""

    async def pull(self) -> list[SourceReport]:
        try:
            self.last = await asyncio.to_thread(
                pull_sources, self.sources, self.base, self.store, now_ms=int(time.time() * 1000)
            )
        except IntelError as exc:  # an unreadable store: the next pull tries again
            log.warning("intel.pull_failed", error=exc.message)
        return self.last

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.pull()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await stop.wait()
