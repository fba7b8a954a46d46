"""The notifier: renders a notice per channel, sends it with retries and backoff, logs the outcome.

Stages of one send, in order: severity filter -> dedup against the notification log -> render ->
deliver with retries -> record (log row and a timeline event, in one transaction). A channel that
fails never blocks the others; a permanent error (``recoverable=False``) is not retried. While the
store is unavailable the log is read and written with backoff until it answers: a notice is neither
lost nor sent twice. ``announce`` sends an operational notice that needs no store at all (the store's
own outage).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.clock import Clock
from breakglass.config.alerting import NotificationsConfig
from breakglass.domain import Severity
from breakglass.errors import NotifyError
from breakglass.logs import get_logger
from breakglass.metrics import NOTIFICATIONS
from breakglass.notify.channels import Channel, build_channels
from breakglass.notify.message import Notice, TemplateSet
from breakglass.notify.models import NotificationLog
from breakglass.store.health import StoreHealth, until_stored
from breakglass.store.outbox import in_transaction
from breakglass.timeline import TimelineKind, append_event

__all__ = ["Notifier"]

log = get_logger(__name__)


class Notifier:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        clock: Clock,
        *,
        templates: TemplateSet | None = None,
        channel_templates: Mapping[str, str | None] | None = None,
        min_severity: Mapping[str, Severity] | None = None,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        health: StoreHealth | None = None,
    ) -> None:
        self.sessions = sessions
        self.health = health or StoreHealth()
        self.channels = dict(channels)
        self.clock = clock
        self.templates = templates or TemplateSet()
        self.channel_templates = dict(channel_templates or {})
        self.min_severity = dict(min_severity or {})
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep

    @classmethod
    def from_config(
        cls,
        config: NotificationsConfig,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        health: StoreHealth | None = None,
    ) -> Notifier:
        return cls(
            sessions,
            build_channels(config),
            clock,
            templates=TemplateSet({t.name: (t.title, t.body) for t in config.templates}),
            channel_templates={c.name: c.template for c in config.channels},
            min_severity={c.name: Severity.parse(c.min_severity) for c in config.channels},
            attempts=config.attempts,
            backoff=config.backoff,
            health=health,
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    async def notify(self, notice: Notice) -> dict[str, str]:
        """Send ``notice`` to each of its receivers. Returns channel -> ``sent``, ``duplicate``,
        ``below_severity``, ``unknown_channel`` or ``failed``; never raises for a channel's failure."""
        outcomes = await asyncio.gather(*(self._one(notice, name) for name in notice.receivers))
        return dict(zip(notice.receivers, outcomes, strict=True))

    async def _one(self, notice: Notice, name: str) -> str:
        channel = self.channels.get(name)
        if channel is None:
            log.warning("notify.unknown_channel", channel=name, incident=notice.incident_id)
            return "unknown_channel"
        if notice.severity < self.min_severity.get(name, Severity.INFO):
            return "below_severity"

        async def sent() -> bool:
            async with self.sessions() as session:
                return await _sent(session, notice, name)

        if await until_stored(self.health, "notify.log", sent, write=False):
            return "duplicate"
        rendered = self.templates.render(notice, self.channel_templates.get(name))
        attempts, error = await self._deliver(channel, rendered.title, rendered.body, notice.payload())
        status = "sent" if error is None else "failed"
        await until_stored(
            self.health,
            "notify.record",
            lambda: self._record(notice, name, status, attempts, None if error is None else str(error)),
        )
        return status

    async def _deliver(
        self, channel: Channel, title: str, body: str, payload: Mapping[str, Any]
    ) -> tuple[int, NotifyError | None]:
        """Send with retries and backoff; returns (attempts, the last error or None)."""
        attempts, error = 0, None
        for attempt in range(self.attempts):
            attempts = attempt + 1
            try:
                await channel.send(title, body, payload)
                NOTIFICATIONS.labels(channel.name, "delivered").inc()
                return attempts, None
            except NotifyError as exc:
                error = exc
                log.warning("notify.failed", channel=channel.name, attempt=attempts, error=str(exc),
                            recoverable=exc.recoverable)  # fmt: skip
                if not exc.recoverable or attempts == self.attempts:
                    break
                await self._sleep(self.backoff * 2**attempt)
        NOTIFICATIONS.labels(channel.name, "failed").inc()
        return attempts, error

    async def announce(
        self, title: str, body: str, payload: Mapping[str, Any], receivers: Sequence[str] = ()
    ) -> dict[str, str]:
        """An operational notice about breakglass itself (the store's outage), to ``receivers`` or,
        when none are named, to every channel. It touches no store: no notification log, no dedup, no
        timeline. Returns channel -> ``sent`` or ``failed``."""
        names = tuple(receivers) or tuple(self.channels)

        async def one(name: str) -> str:
            channel = self.channels.get(name)
            if channel is None:
                return "unknown_channel"
            _attempts, error = await self._deliver(channel, title, body, payload)
            return "sent" if error is None else "failed"

        outcomes = await asyncio.gather(*(one(name) for name in names))
        return dict(zip(names, outcomes, strict=True))

    async def _record(
        self, notice: Notice, channel: str, status: str, attempts: int, error: str | None
    ) -> None:
        now = self.clock.now_ms()

        async def work(session: AsyncSession) -> None:
            query = select(NotificationLog).where(
                NotificationLog.incident_id == notice.incident_id,
                NotificationLog.channel == channel,
                NotificationLog.event == notice.event,
            )
            row = (await session.scalars(query)).first()
            if row is None:
                row = NotificationLog(incident_id=notice.incident_id, channel=channel,
                                      event=notice.event, attempts=0)  # fmt: skip
                session.add(row)
            row.status, row.at, row.error = status, now, error
            row.attempts = (row.attempts or 0) + attempts
            await append_event(
                session, kind=TimelineKind.NOTIFICATION, actor="notifier", at=now,
                incident_id=notice.incident_id,
                data={"channel": channel, "event": notice.event, "status": status,
                      "attempts": attempts, "error": error},
            )  # fmt: skip

        await in_transaction(self.sessions, None, work)


async def _sent(session: AsyncSession, notice: Notice, channel: str) -> bool:
    query = select(NotificationLog.id).where(
        NotificationLog.incident_id == notice.incident_id,
        NotificationLog.channel == channel,
        NotificationLog.event == notice.event,
        NotificationLog.status == "sent",
    )
    return (await session.execute(query)).first() is not None
