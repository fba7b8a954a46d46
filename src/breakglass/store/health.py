"""The store's health as the pipeline lives it: available, or in an outage since when, and what waits.

A database that is locked past its busy timeout, refuses connections or drops them is an *outage*,
not a crash: every component that writes keeps what it could not write (checkpoint rows, queued
findings and actions, the ledger's journal) and retries with backoff (``until_stored``). Each reports
here: ``failed`` when a write or read could not reach the database, ``succeeded`` when one did.

An outage is loud from its first failure: one error log line at once (``store.unavailable``), the
``breakglass_store_available`` gauge at 0, ``breakglass_store_errors_total`` counting, the outage
listeners told (the incident stage sends a notice through the configured channels), the health
endpoint says ``degraded``. Its end logs ``store.recovered`` with its length and what was still
waiting (``backlog``), which the ``breakglass_store_backlog`` gauge shows draining.

``is_unavailable(exc)`` says which errors count: SQLAlchemy's operational, interface and disconnect
errors and pool timeouts (a locked SQLite, a stopped PostgreSQL), not integrity errors or schema
mistakes, which a retry cannot fix.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge
from sqlalchemy import exc as sa_exc

from breakglass.errors import StoreError
from breakglass.logs import get_logger

__all__ = [
    "StoreHealth",
    "StoreStatus",
    "StoreUnavailable",
    "is_unavailable",
    "short_error",
    "until_stored",
]

log = get_logger(__name__)
T = TypeVar("T")

AVAILABLE = Gauge("breakglass_store_available", "1 while the store takes writes, 0 during an outage.")
ERRORS = Counter(
    "breakglass_store_errors",
    "Store operations that failed because the database was unavailable (locked, refused, dropped).",
    ["operation"],
)
BACKLOG = Gauge(
    "breakglass_store_backlog",
    "Items held in memory or in the ledger's journal until the store takes them again.",
    ["kind"],
)
OUTAGE_SECONDS = Gauge(
    "breakglass_store_outage_seconds", "Seconds since the current store outage began (0 when available)."
)
AVAILABLE.set(1)

# SQLite reports schema mistakes as OperationalError too; a retry cannot fix those.
_NOT_OUTAGES = ("no such table", "no such column", "syntax error", "has no column named")


class StoreUnavailable(StoreError):
    """The database could not be reached or written now; a later attempt may succeed."""

    recoverable = True


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unavailable for now (locked, down, disconnected)."""
    if isinstance(exc, StoreUnavailable):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError):
        return not any(text in str(exc.orig).lower() for text in _NOT_OUTAGES)
    return isinstance(exc, sa_exc.InterfaceError | sa_exc.DisconnectionError | sa_exc.TimeoutError)


def short_error(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's SQL and parameters (they may hold evidence)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """A change of availability, as told to outage listeners."""

    available: bool
    since: float
    """Wall-clock seconds the outage began (for a recovery: the outage that ended)."""
    operation: str
    error: str
    backlog: dict[str, int]
    duration: float = 0.0
    """Seconds the outage lasted (recoveries only)."""


Listener = Callable[[StoreStatus], Awaitable[Any] | None]


class StoreHealth:
    """Shared by every component of one process that uses the store (``Store.health``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.available = True
        self.since: float | None = None
        """Wall-clock seconds the current outage began, None while available."""
        self.last_error = ""
        self.outages = 0
        self.failures = 0
        self._backlog: dict[str, Callable[[], int]] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, kind: str, count: Callable[[], int]) -> None:
        """Report ``count()`` as what ``kind`` holds until the store takes it (checkpoints, journal...)."""
        self._backlog[kind] = count
        BACKLOG.labels(kind).set_function(count)

    def backlog(self) -> dict[str, int]:
        return {kind: count() for kind, count in self._backlog.items()}

    async def refresh(self) -> None:
        """Bring the view up to date: nothing to do here, this process's own writes set it (the API's
        process asks the pipeline's, ``api.bridge.RemoteStoreHealth``)."""

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` (sync or async) when an outage begins and when it ends."""
        self._listeners.append(listener)

    def failed(self, operation: str, exc: BaseException) -> None:
        """``operation`` could not reach the store: an outage begins (loudly) or goes on (quietly)."""
        ERRORS.labels(operation).inc()
        self.failures += 1
        self.last_error = short_error(exc)
        if not self.available:
            return
        self.available = False
        self.since = self._clock()
        self.outages += 1
        AVAILABLE.set(0)
        OUTAGE_SECONDS.set_function(self._outage_seconds)
        log.error(
            "store.unavailable: detection and response go on; writes wait and are retried",
            operation=operation,
            error=self.last_error,
            backlog=self.backlog(),
        )
        self._tell(StoreStatus(False, self.since, operation, self.last_error, self.backlog()))

    def now(self) -> float:
        return self._clock()

    def succeeded(self, operation: str, *, started: float | None = None) -> None:
        """``operation`` reached the store: an outage, if any, is over. ``started`` (``now()`` when
        the attempt began): an attempt that began before the outage proves nothing about its end."""
        if self.available:
            return
        if started is not None and self.since is not None and started < self.since:
            return
        since = self.since or self._clock()
        duration = self._clock() - since
        self.available, self.since = True, None
        AVAILABLE.set(1)
        OUTAGE_SECONDS.set(0)
        waiting = self.backlog()
        log.warning(
            "store.recovered", operation=operation, outage_seconds=round(duration, 3), waiting=waiting
        )
        self._tell(StoreStatus(True, since, operation, self.last_error, waiting, duration))

    def _outage_seconds(self) -> float:
        return 0.0 if self.since is None else self._clock() - self.since

    def _tell(self, status: StoreStatus) -> None:
        for listener in self._listeners:
            try:
                result = listener(status)
            except Exception:  # a broken listener must not turn an outage into a crash
                log.exception("store.listener_failed")
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("store.listener_failed", error=str(task.exception()))

    async def close(self) -> None:
        """Wait briefly for listeners still running (a notice being sent)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)


async def until_stored(
    health: StoreHealth,
    operation: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
    write: bool = True,
) -> T:
    """``await attempt()`` until it succeeds; while the store is unavailable, retry with backoff
    (``first_delay`` doubling to ``max_delay``), reporting to ``health``. Other errors propagate.
    Cancel the caller to give up (a component stopping). A read (``write=False``) that succeeds does
    not end an outage: a locked SQLite still answers reads."""
    delay = first_delay
    while True:
        started = health.now()
        try:
            result = await attempt()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            health.failed(operation, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if write:
            health.succeeded(operation, started=started)
        return result
