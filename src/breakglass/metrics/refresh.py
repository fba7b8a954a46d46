"""Gauges that no stage keeps in memory, refreshed in the background: alerts by status and incidents
by state (counted in the store), bus lag per durable consumer, the backlog of the JetStream work
queues this process submits to or works on (the simulate queue), and the readiness checks.

One query per table every ``interval`` seconds (10 by default), off every stage's path; an error is
logged and the gauges keep their last values until the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.bus import Bus
from breakglass.health import Health
from breakglass.incidents.models import Incident
from breakglass.incidents.states import IncidentState
from breakglass.logs import get_logger
from breakglass.metrics import ALERTS, BUS_LAG, INCIDENTS, WORK_QUEUE_OLDEST_AGE, WORK_QUEUE_PENDING
from breakglass.store.db import Store

__all__ = ["MetricsRefresher"]

log = get_logger(__name__)


class WorkQueue(Protocol):
    """What the refresher asks of a work queue (``bus.workqueue.JetStreamWorkQueue``)."""

    stream: str

    async def backlog(self) -> tuple[int, float]: ...


class MetricsRefresher:
    """``app.components.metrics``: ``refresh()`` once, or ``run(stop)`` every ``interval`` seconds."""

    def __init__(
        self,
        store: Store | None,
        bus: Bus,
        health: Health,
        *,
        interval: float = 10.0,
        queues: list[WorkQueue] | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.health = health
        self.interval = interval
        self.queues = queues or []
        """Work queues whose backlog is exported (each simulate queue this process uses)."""

    async def refresh(self) -> None:
        if self.store is not None:
            try:
                await self._count()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("metrics: store counts unavailable", error=type(exc).__name__)
        lag = getattr(self.bus, "lag", None)
        if lag is not None:
            try:
                for (topic, consumer), waiting in (await lag()).items():
                    BUS_LAG.labels(topic, consumer).set(waiting)
            except Exception as exc:  # a bus that cannot say: the gauge keeps its last value
                log.warning("metrics: bus lag unavailable", error=type(exc).__name__)
        for queue in self.queues:
            try:
                waiting, oldest = await queue.backlog()
            except Exception as exc:  # not opened yet, the server away: the gauges keep their values
                log.warning("metrics: work queue backlog unavailable", stream=queue.stream,
                            error=type(exc).__name__)  # fmt: skip
                continue
            WORK_QUEUE_PENDING.labels(queue.stream).set(waiting)
            WORK_QUEUE_OLDEST_AGE.labels(queue.stream).set(oldest)
        await self.health.readiness()  # sets breakglass_ready{check}

    async def _count(self) -> None:
        assert self.store is not None
        async with self.store.sessions() as session:
            alerts: dict[str, Any] = dict(
                (await session.execute(select(AlertRow.status, func.count()).group_by(AlertRow.status))).all()
            )
            incidents: dict[str, Any] = dict(
                (await session.execute(select(Incident.state, func.count()).group_by(Incident.state))).all()
            )
        for status in {*(s.value for s in AlertStatus), *alerts}:
            ALERTS.labels(status).set(int(alerts.get(status, 0)))
        for state in {*(s.value for s in IncidentState), *incidents}:
            INCIDENTS.labels(state).set(int(incidents.get(state, 0)))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await stop.wait()

    async def close(self) -> None:
        """One last round, so that the gauges end on the final state (the app closes the store after)."""
        await self.refresh()
