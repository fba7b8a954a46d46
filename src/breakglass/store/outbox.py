"""Messages a transaction wants published, held on its session until it commits.

Services never commit and never publish: they ``enqueue`` onto the session, and the edge that owns
the transaction (``transaction``) publishes the queue on the bus after a successful commit, so no
subscriber ever sees an event of a rolled-back transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from breakglass.bus import Bus

__all__ = ["enqueue", "in_transaction", "take_outbox", "transaction"]

T = TypeVar("T")

_KEY = "breakglass.outbox"


def enqueue(session: AsyncSession, topic: str, message: Any) -> None:
    session.info.setdefault(_KEY, []).append((topic, message))


def take_outbox(session: AsyncSession) -> list[tuple[str, Any]]:
    """Remove and return the queued messages (topic, message), oldest first."""
    queued: list[tuple[str, Any]] = session.info.pop(_KEY, [])
    return queued


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession], bus: Bus | None = None
) -> AsyncIterator[AsyncSession]:
    """One unit of work: a session in a transaction, committed on success, then its outbox published."""
    async with sessions() as session:
        async with session.begin():
            yield session
        queued = take_outbox(session)
    if bus is not None:
        for topic, message in queued:
            await bus.publish(topic, message)


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None,
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 3,
) -> T:
    """Run ``work`` in one ``transaction``; rerun it when it lost a race (a unique key another
    writer took first, a lock that timed out, a compare-and-set on a row another writer changed:
    ``StaleDataError``). The losing attempt rolled back, so nothing doubles."""
    for attempt in range(1, attempts + 1):
        try:
            async with transaction(sessions, bus) as session:
                return await work(session)
        except (IntegrityError, OperationalError, StaleDataError):
            if attempt == attempts:
                raise
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # the loop returns or raises
