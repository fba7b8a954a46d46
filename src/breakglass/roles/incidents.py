"""The ``incidents`` role as one component: alerts, action recording and notifications. It assembles
three stages (alerts -> incidents -> notify), so it lives above them, not in any of them.

``build_incident_stage`` wires it from configuration (no I/O); ``subscribe()`` takes its three bus
subscriptions (``App.start`` calls it before any producer runs, so no finding published during a slow
migration is lost); ``start()`` subscribes if not yet, migrates the store and consumes in the
background (findings and retractions -> alerts -> incidents; actions -> incidents; incident changes ->
notifications); ``run(stop)`` does the same until ``stop``.
"""

from __future__ import annotations

import asyncio

from breakglass.alerts.pipeline import build_pipeline
from breakglass.alerts.service import AlertService
from breakglass.bus import Bus
from breakglass.bus.consumer import Consumer
from breakglass.clock import Clock, SystemClock
from breakglass.config import LoadedConfig
from breakglass.incidents.actions import ActionRecorder
from breakglass.incidents.consumer import ActionConsumer
from breakglass.incidents.service import IncidentService
from breakglass.notify.dispatch import NotificationDispatcher
from breakglass.notify.service import Notifier
from breakglass.store.db import Store
from breakglass.store.health import until_stored

__all__ = ["IncidentStage", "build_incident_stage"]


class IncidentStage:
    def __init__(
        self,
        store: Store,
        incidents: IncidentService,
        alerts: AlertService,
        actions: ActionConsumer,
        dispatcher: NotificationDispatcher,
        notifier: Notifier,
    ) -> None:
        self.store = store
        self.incidents = incidents
        self.alerts = alerts
        self.actions = actions
        self.dispatcher = dispatcher
        self.notifier = notifier
        self._started = False

    @property
    def consumers(self) -> list[Consumer]:
        """The stage's supervised bus subscriptions (readiness, metrics)."""
        return [*self.alerts.consumers, *self.actions.consumers, *self.dispatcher.consumers]

    def subscribe(self) -> None:
        """Take the stage's bus subscriptions now (no I/O): what is published from here on waits for it."""
        self.alerts.subscribe()
        self.actions.subscribe()
        self.dispatcher.subscribe()

    async def start(self) -> None:
        """Subscribe, migrate the schema, then consume in the background. Idempotent."""
        if self._started:
            return
        self.subscribe()  # before the migration's awaits: a producer may already be publishing
        await until_stored(self.store.health, "store.upgrade", self.store.upgrade, write=False)  # waits
        self.alerts.start()
        self.actions.start()
        self.dispatcher.start()
        self._started = True

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()

    async def close(self) -> None:
        await self.alerts.close()
        await self.actions.close()
        await self.dispatcher.close()
        await self.notifier.close()
        self._started = False


def build_incident_stage(
    config: LoadedConfig, bus: Bus, store: Store, *, clock: Clock | None = None
) -> IncidentStage:
    settings = config.settings
    clock = clock or SystemClock()
    incidents = IncidentService(clock, protocol=settings.protocol)
    alerts = AlertService(store.sessions, bus, build_pipeline(settings.alerting, incidents), clock,
                          default_labels={"protocol": settings.protocol}, health=store.health)  # fmt: skip
    notifier = Notifier.from_config(settings.notifications, store.sessions, clock, health=store.health)
    dispatcher = NotificationDispatcher(store.sessions, bus, notifier, health=store.health,
                                        default_receivers=settings.alerting.default_receivers,
                                        protocol=settings.protocol)  # fmt: skip
    store.health.listen(dispatcher.announce_store)  # an outage is announced through the channels
    recorder = ActionRecorder(incidents)
    incidents.on_attach.append(recorder.adopt)  # steps that arrived before their finding's incident
    actions = ActionConsumer(store.sessions, bus, recorder, health=store.health)
    return IncidentStage(store, incidents, alerts, actions, dispatcher, notifier)
