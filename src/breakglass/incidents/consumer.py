"""The incident stage's running part: the response engine's action events from the bus into
incident timelines (through ``ActionRecorder``), one transaction per event; retried with backoff, in
order, while the store is unavailable."""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import Bus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.incidents.actions import ActionRecorder
from breakglass.incidents.models import Incident
from breakglass.logs import get_logger
from breakglass.messages.actions import ActionEvent
from breakglass.store.health import StoreHealth, until_stored
from breakglass.store.outbox import in_transaction

__all__ = ["ActionConsumer"]

log = get_logger(__name__)


class ActionConsumer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        recorder: ActionRecorder,
        *,
        health: StoreHealth | None = None,
    ) -> None:
        self.sessions = sessions
        self.health = health or StoreHealth()
        self.bus = bus
        self.recorder = recorder
        self.consumers = [Consumer(bus, Topics.ACTIONS, "incidents", self._on_message)]
        """Its supervised bus subscription (``breakglass.bus.consumer``)."""

    async def handle(self, event: ActionEvent) -> Incident | None:
        async def work(session: AsyncSession) -> Incident | None:
            return await self.recorder.record(session, event)

        return await in_transaction(self.sessions, self.bus, work)

    async def _on_message(self, message: Any) -> None:
        if not isinstance(message, ActionEvent):
            log.warning("incidents.unknown_action_message", type=type(message).__name__)
            return
        try:
            await until_stored(self.health, "incidents.action", partial(self.handle, message))
        except Exception:  # keep consuming; the failure is logged with its traceback
            log.exception("incidents.action_failed", key=message.key, step=str(message.step))

    def subscribe(self) -> None:
        """Subscribe now; ``start`` consumes what arrived meanwhile."""
        self.consumers[0].subscribe()

    def start(self) -> None:
        self.consumers[0].start()

    async def close(self) -> None:
        await self.consumers[0].close()
