"""What every route can reach: the wired application, the store, the services, the live-event hub.

Routes get an :class:`ApiContext` through the ``Ctx`` dependency and open their own transaction with
:meth:`ApiContext.transaction`, which commits, then publishes what the services queued on the bus, or
hand their work to :meth:`ApiContext.write`, which does the same and reruns work that lost a race.
The services are the incident stage's own (``IncidentService``, ``SilenceService``) and the response
engine's (``SafeService``, ``Ledger``); the API adds access control and shapes, never logic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.alerts.silence import SilenceService
from breakglass.api.auth import Principal, SessionCodec
from breakglass.api.events import EventHub
from breakglass.app import App
from breakglass.clock import Clock, SystemClock
from breakglass.incidents.service import IncidentService
from breakglass.respond.ledger import Ledger
from breakglass.respond.safe import SafeService
from breakglass.store.outbox import in_transaction, transaction
from breakglass.timeline import TimelineEntry, record_audit

__all__ = ["ApiContext", "Ctx", "context"]

T = TypeVar("T")


@dataclass
class ApiContext:
    app: App
    sessions: async_sessionmaker[AsyncSession]
    codec: SessionCodec
    hub: EventHub
    clock: Clock = field(default_factory=SystemClock)
    secure_cookies: bool | None = None
    """True/False forces the cookie's Secure flag; None follows the request's scheme."""
    live_recheck: float = 15.0
    """Seconds between heartbeats of a live stream, and between checks that its token still holds."""
    incidents: IncidentService = field(init=False)
    silences: SilenceService = field(init=False)
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        # The incident stage's own service when it is wired (same clock), else an equivalent one.
        stage = self.app.components.incidents
        protocol = self.app.config.settings.protocol
        self.incidents = (
            stage.incidents if stage is not None else IncidentService(self.clock, protocol=protocol)
        )
        self.silences = SilenceService(self.clock)
        responder = self.app.components.respond
        self.ledger = responder.ledger if responder is not None else Ledger(self.sessions)

    @property
    def safes(self) -> SafeService:
        """The response engine's Safe service; 503 when no responder (chain, Safes) is configured."""
        responder = self.app.components.respond
        safes = responder.safes if responder is not None else None
        if safes is None:
            raise HTTPException(503, "no Safe service: the response engine is not configured")
        return safes

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success, rolls back on error, and publishes its outbox after."""
        async with transaction(self.sessions, self.app.bus) as session:
            yield session

    async def write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``work`` in one transaction (committed, then its outbox published), rerun from the start
        when it lost a race: a lifecycle compare-and-set another writer won re-reads and decides again."""
        return await in_transaction(self.sessions, self.app.bus, work)

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; nothing is committed."""
        async with self.sessions() as session:
            yield session

    async def audit(
        self,
        session: AsyncSession,
        who: Principal,
        action: str,
        target: str,
        *,
        incident_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> TimelineEntry:
        """Record one mutating call in the audit chain, in the caller's transaction."""
        return await record_audit(
            session,
            actor=who.name,
            action=action,
            at=self.clock.now_ms(),
            target=target,
            incident_id=incident_id,
            details={"role": str(who.role), "via": who.via, **(details or {})},
        )


def context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]
