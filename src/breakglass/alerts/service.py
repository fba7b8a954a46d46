"""The alert stage as a running component: findings and retractions from the bus, through the
pipeline, one transaction per batch; what changed is published after commit.

Retractions (a reorg removed the block, or a detector withdrew a finding) never delete: the alert is
marked ``retracted`` and its incident's timeline says so. A retraction names a finding (a
``Finding`` or its fingerprint) or a block (anything with ``block_hash`` or a checkpoint's ``hash``).
While the store is unavailable a message is retried with backoff, in order, until it is written
(``store/health.py``): nothing is dropped. The two topics are not ordered with each other: what a
retraction names is recorded (``alerts/tombstones.py``), and a finding it retracts that comes after it
is stored retracted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.alerts.stage import AlertContext, Candidate, MultiStage
from breakglass.alerts.tombstones import record
from breakglass.bus import Bus, Topics
from breakglass.bus.consumer import Consumer
from breakglass.clock import Clock
from breakglass.domain import Finding
from breakglass.logs import get_logger
from breakglass.store.health import StoreHealth, until_stored
from breakglass.store.outbox import enqueue, in_transaction
from breakglass.timeline import TimelineKind, append_event

__all__ = ["AlertService", "retraction_keys"]

log = get_logger(__name__)


def retraction_keys(message: Any) -> tuple[set[str], set[str]]:
    """(fingerprints, block hashes) a retraction message names."""
    if isinstance(message, Finding):
        return {message.fingerprint}, set()
    if isinstance(message, str):
        return {message}, set()
    fingerprints = set(getattr(message, "fingerprints", ()) or ())  # messages.findings.Retraction
    if getattr(message, "fingerprint", None):
        fingerprints.add(message.fingerprint)
    block = getattr(message, "block_hash", None) or getattr(message, "hash", None)
    return fingerprints, ({block} if block else set())


class AlertService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        pipeline: MultiStage,
        clock: Clock,
        *,
        default_labels: Mapping[str, str] | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self.sessions = sessions
        self.health = health or StoreHealth()
        self.bus = bus
        self.pipeline = pipeline
        self.clock = clock
        self.default_labels = dict(default_labels or {})
        self.consumers = [Consumer(bus, Topics.FINDINGS, "alerts", self._on_finding),
                          Consumer(bus, Topics.RETRACTIONS, "alerts", self._on_retraction)]  # fmt: skip
        """Its supervised bus subscriptions (``breakglass.bus.consumer``)."""

    async def process(self, findings: Sequence[Finding]) -> list[Candidate]:
        """Run findings through the pipeline in one transaction; returns what reached an incident."""

        async def work(session: AsyncSession) -> list[Candidate]:
            ctx = AlertContext(session, self.clock.now_ms())
            candidates = [Candidate.of(f, self.default_labels) for f in findings]
            passed = await self.pipeline(ctx, candidates)
            for candidate in candidates:
                if candidate.alert is not None:
                    enqueue(session, Topics.ALERTS, candidate.alert.change())
            return passed

        return await in_transaction(self.sessions, self.bus, work)

    async def retract(self, message: Any) -> int:
        """Mark the alerts a retraction names as retracted, and record what it names for findings still
        to come (``alerts/tombstones.py``). Returns how many alerts changed."""
        fingerprints, blocks = retraction_keys(message)
        if not fingerprints and not blocks:
            log.warning("alerts.retraction_unknown", message=type(message).__name__)
            return 0

        async def work(session: AsyncSession) -> int:
            now = self.clock.now_ms()
            query = select(AlertRow).where(
                AlertRow.status != AlertStatus.RETRACTED.value,
                or_(AlertRow.fingerprint.in_(fingerprints), AlertRow.block_hash.in_(blocks)),
            )
            rows = list((await session.scalars(query)).all())
            made = float(getattr(message, "at_ms", 0) or 0) or None  # Retraction.at_ms, the engine's clock
            await record(session, fingerprints=fingerprints, blocks=blocks, at_ms=made, now_ms=now)
            if made is not None:
                # raised from a handling of its block after this retraction was made (it came on the
                # findings topic first): the block is canonical again, this retraction is stale
                rows = [r for r in rows if r.observed_at_ms is None or r.observed_at_ms <= made]
            for row in rows:
                row.status, row.retracted_at = AlertStatus.RETRACTED.value, now
                row.retraction_at_ms = made
                enqueue(session, Topics.ALERTS, row.change())
                if row.incident_id is not None:
                    await append_event(
                        session, kind=TimelineKind.FINDING, actor="breakglass", at=now,
                        incident_id=row.incident_id,
                        data={"retracted": True, "fingerprint": row.fingerprint,
                              "block_number": row.block_number, "block_hash": row.block_hash},
                    )  # fmt: skip
            return len(rows)

        return await in_transaction(self.sessions, self.bus, work)

    async def _on_finding(self, message: Any) -> None:
        if not isinstance(message, Finding):
            log.warning("alerts.not_a_finding", type=type(message).__name__)
            return
        try:
            await until_stored(self.health, "alerts.process", partial(self.process, [message]))
        except Exception:  # one bad message must not stop the stage; it is logged in full
            log.exception("alerts.message_failed", topic=Topics.FINDINGS, fp=message.fingerprint)

    async def _on_retraction(self, message: Any) -> None:
        try:
            await until_stored(self.health, "alerts.retract", partial(self.retract, message))
        except Exception:
            log.exception("alerts.message_failed", topic=Topics.RETRACTIONS)

    def subscribe(self) -> None:
        """Subscribe to findings and retractions now: nothing published after this is missed, even
        before ``start`` consumes (``App.start`` subscribes every consumer before any producer runs)."""
        for consumer in self.consumers:
            consumer.subscribe()

    def start(self) -> None:
        """Subscribe (if not yet) and consume in the background."""
        for consumer in self.consumers:
            consumer.start()

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.close()
