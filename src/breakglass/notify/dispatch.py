"""From incident changes (``Topics.INCIDENTS``) to notices: opened, escalated and state changes are
announced to the channels the incident's alerts were routed to; other changes stay quiet. The store's
outages (``StoreHealth``) are announced to the default receivers (or every channel) when they begin
and when they end."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import Bus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.incidents.models import Incident, IncidentChange
from breakglass.logs import get_logger
from breakglass.notify.message import notice_for
from breakglass.notify.service import Notifier
from breakglass.store.health import StoreHealth, StoreStatus, until_stored

__all__ = ["NotificationDispatcher", "event_key"]

log = get_logger(__name__)


def event_key(change: IncidentChange) -> str | None:
    """The notification-log key of a change worth a notification, else None."""
    if change.change == "opened":
        return "opened"
    if change.change in ("escalated", "state") and change.value:
        return f"{change.change}:{change.value}"
    return None


class NotificationDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        notifier: Notifier,
        *,
        default_receivers: Sequence[str] = (),
        health: StoreHealth | None = None,
        protocol: str = "protocol",
    ) -> None:
        self.sessions = sessions
        self.health = health or StoreHealth()
        self.protocol = protocol
        self.bus = bus
        self.notifier = notifier
        self.default_receivers = tuple(default_receivers)
        self.consumers = [Consumer(bus, Topics.INCIDENTS, "notify", self._on_message)]
        """Its supervised bus subscription (``breakglass.bus.consumer``)."""

    async def handle(self, change: IncidentChange) -> dict[str, str]:
        key = event_key(change)
        if key is None:
            return {}

        async def read() -> Incident | None:
            async with self.sessions() as session:
                return await session.get(Incident, change.incident_id)

        incident = await until_stored(self.health, "notify.read", read, write=False)
        if incident is None:
            return {}
        receivers = tuple(incident.receivers or ()) or self.default_receivers
        return await self.notifier.notify(notice_for(incident, key, receivers))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, IncidentChange):
            try:
                await self.handle(message)
            except Exception:  # a broken notification must not stop the next ones
                log.exception("notify.dispatch_failed", incident=message.incident_id)

    def subscribe(self) -> None:
        """Subscribe now; ``start`` consumes what arrived meanwhile."""
        self.consumers[0].subscribe()

    async def announce_store(self, status: StoreStatus) -> dict[str, str]:
        """Tell the default receivers (every channel when there are none) that the store became
        unavailable, or came back, and what that means for the pipeline."""
        started = datetime.fromtimestamp(status.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        waiting = ", ".join(f"{n} {kind}" for kind, n in status.backlog.items() if n) or "nothing"
        if status.available:
            title = f"{self.protocol}: breakglass store available again"
            body = (f"The store is back after {status.duration:.1f} s (outage from {started}). "
                    f"Writing what waited: {waiting}.")  # fmt: skip
        else:
            title = f"[CRITICAL] {self.protocol}: breakglass store unavailable"
            body = (f"Since {started}, {status.operation} fails: {status.error}. Detection and "
                    "containment go on; alerts, incidents and the ledger are written once the "
                    f"store is back (waiting: {waiting}). Until then the dashboard and API lag.")  # fmt: skip
        payload = {
            "event": "store.available" if status.available else "store.unavailable",
            "protocol": self.protocol,
            "store": {"since": status.since, "operation": status.operation, "error": status.error,
                      "backlog": dict(status.backlog), "outage_seconds": status.duration},
        }  # fmt: skip
        outcome = await self.notifier.announce(title, body, payload, self.default_receivers)
        log.info("notify.store_announced", available=status.available, outcome=outcome)
        return outcome

    def start(self) -> None:
        self.consumers[0].start()

    async def close(self) -> None:
        await self.consumers[0].close()
