"""Exporting incidents when they are confirmed: the ``intel.export`` stage.

It follows ``Topics.INCIDENTS``: when an incident reaches the configured state (by default, closed as
a true positive), its signed bundle is written to ``intel.export.folder`` as ``<incident>.json`` and,
when configured, published to a TAXII collection. A later move to that state (a reopened incident
closed again) writes the bundle again with what the incident holds then. A failure is logged
(``intel.export_failed``) and never stops the stage: sharing is a courtesy, not part of containment.
Transitions made in the dashboard or API reach it (the API process relays them); one made with
``breakglass incidents transition`` in another process reaches it over JetStream only.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from breakglass.bus import Bus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.clock import SystemClock
from breakglass.config import LoadedConfig
from breakglass.errors import BreakglassError
from breakglass.incidents.service import IncidentService
from breakglass.intel.export import export_incident, write_bundle
from breakglass.intel.signing import BundleSigner
from breakglass.logs import get_logger
from breakglass.messages.incidents import IncidentChange
from breakglass.store.db import Store

__all__ = ["IntelExporter"]

log = get_logger(__name__)


class IntelExporter:
    def __init__(self, config: LoadedConfig, bus: Bus, store: Store, signer: BundleSigner) -> None:
        settings = config.settings.intel.export
        assert settings is not None  # built only when configured (app.build_app)
        self.config = config
        self.settings = settings
        self.folder = config.path.parent / settings.folder
        self.store = store
        self.signer = signer
        self.service = IncidentService(SystemClock(), protocol=config.settings.protocol)
        self.consumers = [Consumer(bus, Topics.INCIDENTS, "intel-export", self._on_message)]
        """Its supervised bus subscription (``breakglass.bus.consumer``)."""

    async def handle(self, change: IncidentChange) -> Path | None:
        """Export the incident if ``change`` confirms it; the bundle's path, or None."""
        if change.change != "state" or change.value != self.settings.when:
            return None
        from breakglass.chain.rpc import RpcClient

        urls = self.config.rpc_urls() if self.settings.chain else []
        rpc = RpcClient.from_urls(urls, timeout=self.config.settings.chain.request_timeout) if urls else None
        try:
            async with self.store.sessions() as session:
                incident = await self.service.get(session, change.incident_id)
                if self.settings.when == "closed" and incident.resolution != "true_positive":
                    return None
                now_ms = int(time.time() * 1000)
                bundle = await export_incident(session, self.service, change.incident_id, self.config,
                                               self.signer, now_ms=now_ms, chain=rpc)  # fmt: skip
        finally:
            if rpc is not None:
                await rpc.close()
        path = self.folder / f"{change.incident_id}.json"
        await asyncio.to_thread(write_bundle, path, bundle)
        stored = await self._publish(bundle)
        log.info("intel.exported", incident=change.incident_id, file=str(path), published=stored)
        return path

    async def _publish(self, bundle: dict[str, Any]) -> int | None:
        collection = self.settings.collection
        if collection is None:
            return None
        from breakglass.intel.taxii import publish_bundle

        password = collection.password.get_secret_value() if collection.password is not None else None
        return await asyncio.to_thread(
            publish_bundle, bundle, collection.url.get_secret_value(), user=collection.user, password=password
        )

    async def _on_message(self, message: Any) -> None:
        if not isinstance(message, IncidentChange):
            return
        try:
            await self.handle(message)
        except BreakglassError as exc:
            log.warning("intel.export_failed", incident=message.incident_id, error=str(exc))
        except Exception:  # keep consuming; the failure is logged with its traceback
            log.exception("intel.export_failed", incident=message.incident_id)

    def subscribe(self) -> None:
        """Subscribe now; ``run`` consumes what arrived meanwhile."""
        self.consumers[0].subscribe()

    async def run(self, stop: asyncio.Event) -> None:
        self.consumers[0].start()
        await stop.wait()

    async def close(self) -> None:
        await self.consumers[0].close()
