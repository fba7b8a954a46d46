"""Leader leases with fencing tokens: one holder at a time of a named duty (a responder's signing key,
a chain's follower), and a number that says which holding is the newest.

``Lease(name, holder_id, ttl, backend)``: ``acquire()`` takes the lease if nobody holds it (or the last
holding expired) and gets a **fencing token**, larger than every token handed out for ``name`` before;
``renew()`` extends the current holding (refused once it may have expired: a lost lease stays lost,
the holder acquires again and gets a new token); ``release()`` gives it up early; ``is_held()`` says
whether this process may act now. ``run(stop)`` does all of it in the background: acquire when free,
renew every third of ``ttl``.

Why ``is_held()`` can be trusted without asking anyone: a holding expires on the backend ``ttl``
seconds after the backend wrote it (its own clock: NATS's or PostgreSQL's, never this machine's wall
clock), and the backend wrote it after this process sent the request. This process counts its ``ttl``
from *before* the request, on its monotonic clock, minus a small ``margin`` for clock-rate drift. So
``is_held()`` turns False no later than any other process could acquire: a holder cut off from the
backend (a partition, a paused VM) stops acting on its own, before a successor starts.

The token is what makes a late write harmless: a process that paused right after ``is_held()`` said
True may still reach a shared store after its successor took over. Writes that matter carry the
token, and the store refuses one older than the newest it has seen (``respond.ledger``'s claims).

Backends (a small Protocol, ``LeaseBackend``): ``MemoryLeaseBackend`` (one process: always granted to
the first asker, as a process without HA configuration behaves), NATS JetStream key-value
(``ha/nats.py``) and PostgreSQL (``ha/postgres.py``). ``build_lease`` makes one from the ``ha``
settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from breakglass.errors import BreakglassError
from breakglass.logs import get_logger

__all__ = ["Held", "Lease", "LeaseBackend", "LeaseError", "MemoryLeaseBackend"]

log = get_logger(__name__)


class LeaseError(BreakglassError):
    """The lease backend could not be reached or answered badly (recoverable: ask again later)."""

    recoverable = True


@dataclass(frozen=True, slots=True)
class Held:
    """What a backend granted: the fencing token, and its own handle for renewing (a revision)."""

    token: int
    handle: int


class LeaseBackend(Protocol):
    """Where leases live. Each call is one compare-and-set on the backend's own clock."""

    async def acquire(self, name: str, holder: str, ttl: float) -> Held | None:
        """Take ``name`` for ``ttl`` seconds if it is free or expired; None if someone holds it."""
        ...

    async def renew(self, name: str, holder: str, held: Held, ttl: float) -> Held | None:
        """Extend ``held`` by ``ttl`` seconds from now; None if it expired or is someone else's now."""
        ...

    async def release(self, name: str, holder: str, held: Held) -> None:
        """Give ``held`` up (nothing happens if it is no longer ours)."""
        ...

    async def close(self) -> None: ...


class Lease:
    """One process's view of one named lease. Construct (no I/O), then ``acquire``/``run``."""

    def __init__(
        self,
        name: str,
        holder_id: str,
        ttl: float,
        backend: LeaseBackend,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease's ttl must be positive")
        self.name = name
        self.holder_id = holder_id
        self.ttl = ttl
        self.backend = backend
        self._margin = margin
        self._clock = clock
        self._held: Held | None = None
        self._deadline = 0.0
        self._changed = asyncio.Event()
        self.acquisitions = 0
        """How many times this process acquired the lease (each with a new token)."""

    def __repr__(self) -> str:
        state = f"token {self.token}" if self.is_held() else "not held"
        return f"Lease({self.name!r}, {self.holder_id!r}, {state})"

    @property
    def token(self) -> int | None:
        """The fencing token of the current holding, None while not held."""
        return self._held.token if self.is_held() and self._held is not None else None

    def is_held(self) -> bool:
        """Whether this process holds the lease now (by its own clock, conservatively)."""
        return self._held is not None and self._clock() < self._deadline

    def remaining(self) -> float:
        """Seconds until this process must stop acting (0 when not held)."""
        return max(0.0, self._deadline - self._clock()) if self._held is not None else 0.0

    def _grant(self, held: Held, asked_at: float) -> None:
        self._held = held
        self._deadline = asked_at + self.ttl * (1 - self._margin)

    def _lose(self, why: str) -> None:
        if self._held is not None:
            log.warning("ha.lease_lost", lease=self.name, holder=self.holder_id, token=self._held.token,
                        reason=why)  # fmt: skip
        self._held = None
        self._deadline = 0.0
        self._changed.set()

    async def acquire(self) -> bool:
        """Try once to take the lease; True if held now (already held: renews instead)."""
        if self.is_held():
            return await self.renew()
        asked_at = self._clock()
        try:
            held = await asyncio.wait_for(self.backend.acquire(self.name, self.holder_id, self.ttl), self.ttl)
        except TimeoutError as exc:
            raise LeaseError(f"lease {self.name}: no answer from the backend within {self.ttl:g} s") from exc
        if held is None:
            return False
        self._grant(held, asked_at)
        self.acquisitions += 1
        self._changed.set()
        log.info("ha.lease_acquired", lease=self.name, holder=self.holder_id, token=held.token)
        return True

    async def renew(self) -> bool:
        """Extend the holding; False (and no longer held) if it was lost. Never revives a lost one."""
        if self._held is None:
            return False
        if not self.is_held():
            self._lose("expired before renewal")
            return False
        asked_at = self._clock()
        try:
            held = await asyncio.wait_for(
                self.backend.renew(self.name, self.holder_id, self._held, self.ttl), self.remaining()
            )
        except TimeoutError as exc:
            if not self.is_held():
                self._lose("the backend did not answer before expiry")
            raise LeaseError(f"lease {self.name}: renewal unanswered") from exc
        if held is None:
            self._lose("refused by the backend")
            return False
        if self._held is None:  # released meanwhile
            return False
        self._grant(held, asked_at)
        return True

    async def release(self) -> None:
        """Give the lease up now (a clean shutdown): a successor need not wait for the expiry."""
        held, self._held, self._deadline = self._held, None, 0.0
        if held is not None:
            self._changed.set()
            with contextlib.suppress(BreakglassError, TimeoutError):
                await asyncio.wait_for(self.backend.release(self.name, self.holder_id, held), self.ttl)
            log.info("ha.lease_released", lease=self.name, holder=self.holder_id, token=held.token)

    async def wait_changed(self, within: float | None = None) -> None:
        """Until the lease is acquired, lost or released (or ``within`` seconds passed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)
        self._changed.clear()

    async def run(self, stop: asyncio.Event, *, retry: float | None = None) -> None:
        """Hold the lease whenever possible until ``stop``: acquire when free (every ``retry``
        seconds, default a fifth of ``ttl``), renew every third of ``ttl``; release at the end."""
        retry = self.ttl / 5 if retry is None else retry
        try:
            while not stop.is_set():
                try:
                    if self.is_held():
                        await self.renew()
                    else:
                        if self._held is not None:
                            self._lose("expired: not renewed in time")
                        await self.acquire()
                except BreakglassError as exc:
                    log.warning("ha.lease_backend_failed", lease=self.name, error=str(exc))
                wait = self.ttl / 3 if self.is_held() else retry
                if self.is_held():  # never sleep past the local deadline without a renewal
                    wait = min(wait, max(self.remaining() - self.ttl / 3, 0.01))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            await self.release()


class MemoryLeaseBackend:
    """Leases in this process's memory: for one process (no HA configured, tests). The first holder
    keeps it until it expires or is released; tokens count up from 1."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._leases: dict[str, tuple[str, int, float]] = {}
        """name -> (holder, token, expires at)"""
        self._tokens: dict[str, int] = {}

    async def acquire(self, name: str, holder: str, ttl: float) -> Held | None:
        now = self._clock()
        current = self._leases.get(name)
        if current is not None and current[2] > now:
            return None
        token = self._tokens[name] = self._tokens.get(name, 0) + 1
        self._leases[name] = (holder, token, now + ttl)
        return Held(token, token)

    async def renew(self, name: str, holder: str, held: Held, ttl: float) -> Held | None:
        now = self._clock()
        current = self._leases.get(name)
        if current is None or current[0] != holder or current[1] != held.token or current[2] <= now:
            return None
        self._leases[name] = (holder, held.token, now + ttl)
        return held

    async def release(self, name: str, holder: str, held: Held) -> None:
        current = self._leases.get(name)
        if current is not None and current[0] == holder and current[1] == held.token:
            del self._leases[name]

    async def close(self) -> None:
        return None
