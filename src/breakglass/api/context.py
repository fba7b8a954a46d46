"""What every route can reach: the wired application, the store, the live-event hub and the clock.

Routes get an :class:`ApiContext` through the ``Ctx`` dependency and open their own transaction with
:meth:`ApiContext.transaction`, which commits, then publishes what the services queued on the bus.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import SessionCodec
from breakglass.api.events import EventHub
from breakglass.app import App
from breakglass.store.outbox import transaction

__all__ = ["ApiContext", "Ctx", "context", "now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ApiContext:
    app: App
    sessions: async_sessionmaker[AsyncSession]
    codec: SessionCodec
    hub: EventHub
    clock: Callable[[], int] = field(default=now_ms)
    """Milliseconds since the epoch; audit and timeline timestamps come from here."""
    secure_cookies: bool | None = None
    """True/False forces the cookie's Secure flag; None follows the request's scheme."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success, rolls back on error, and publishes its outbox after."""
        async with transaction(self.sessions, self.app.bus) as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; nothing is committed."""
        async with self.sessions() as session:
            yield session


def context(request: Request) -> ApiContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]
