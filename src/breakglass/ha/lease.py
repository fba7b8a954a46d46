"""Leader leases with fencing tokens: one holder at a time of a named duty (a responder's signing key,
a chain's follower), and a number that says which holding is the newest.

``Lease(name, holder_id, ttl, backend)``: ``acquire()`` takes the lease if nobody holds it (or the last
holding expired) and gets a **fencing token**, larger than every token handed out for ``name`` before;
``renew()`` extends the current holding (refused once it may have expired: a lost lease stays lost,
the holder acquires again and gets a new token); ``release()`` gives it up early; ``is_held()`` says
whether this process may act now. ``run(stop)`` does all of it in the background: acquire when free,
renew every third of ``ttl``.

Renewal off the event loop. A stage that holds the asyncio loop (a long synchronous computation, a
blocking call) would delay a renewal scheduled on that loop past the expiry, and a standby would take
over while the leader merely looked busy. Given a ``renewer`` (a factory of a second backend, with
its own connection), ``run`` renews from a thread with its own event loop instead, and the main loop
only beats a heartbeat. The thread keeps renewing while the heartbeat is younger than ``stall_limit``
(default 3 x ``ttl``): a loop stalled for a few ``ttl`` keeps its lease; a process wedged for longer
stops renewing and loses it ``ttl`` later, as a dead one would. The thread never releases early on
a stall: the leader's own clock, not the backend, decides when it stops acting.

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
import threading
import time
from collections.abc import Awaitable, Callable
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
        renewer: Callable[[], LeaseBackend] | None = None,
        stall_limit: float | None = None,
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
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop ``run`` was called on (``_changed`` belongs to it), while ``run`` runs."""
        self._renewer = renewer
        self.stall_limit = 3 * ttl if stall_limit is None else stall_limit
        """With a ``renewer``: the renewing thread stops renewing once the main loop's heartbeat is
        this old (a wedged process must not keep the lease forever)."""
        self._beat = clock()
        self._wake: Callable[[], object] | None = None
        """Wakes the renewing thread's loop to stop (set while that loop runs)."""
        self.acquisitions = 0
        """How many times this process acquired the lease (each with a new token)."""
        self.stalls = 0
        """How many times the renewing thread found the main loop stalled past ``stall_limit``."""

    def __repr__(self) -> str:
        state = f"token {self.token}" if self.is_held() else "not held"
        return f"Lease({self.name!r}, {self.holder_id!r}, {state})"

    @property
    def token(self) -> int | None:
        """The fencing token of the current holding, None while not held."""
        held = self._held  # one read: the renewing thread may change it meanwhile
        return held.token if held is not None and self._clock() < self._deadline else None

    def is_held(self) -> bool:
        """Whether this process holds the lease now (by its own clock, conservatively). Past the
        local deadline it is False at once, whether or not anyone told the backend."""
        return self._held is not None and self._clock() < self._deadline

    def remaining(self) -> float:
        """Seconds until this process must stop acting (0 when not held)."""
        return max(0.0, self._deadline - self._clock()) if self._held is not None else 0.0

    def _grant(self, held: Held, asked_at: float) -> None:
        # held before the deadline, deadline 0 before held on loss: a reader in the other thread
        # sees the old deadline (earlier, so conservative) or the new one, never a revived holding
        self._held = held
        self._deadline = asked_at + self.ttl * (1 - self._margin)

    def _lose(self, why: str) -> None:
        held = self._held
        if held is not None:
            log.warning("ha.lease_lost", lease=self.name, holder=self.holder_id, token=held.token,
                        reason=why)  # fmt: skip
        self._deadline = 0.0
        self._held = None
        self._notify()

    def _notify(self) -> None:
        """Wake ``wait_changed`` on the loop it runs on (from the renewing thread too)."""
        loop = self._loop
        if loop is None or loop is _running_loop():
            self._changed.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._changed.set)

    async def acquire(self) -> bool:
        """Try once to take the lease; True if held now (already held: renews instead)."""
        return await self._acquire(self.backend)

    async def renew(self) -> bool:
        """Extend the holding; False (and no longer held) if it was lost. Never revives a lost one."""
        return await self._renew(self.backend)

    async def _acquire(self, backend: LeaseBackend) -> bool:
        if self.is_held():
            return await self._renew(backend)
        asked_at = self._clock()
        try:
            async with asyncio.timeout(self.ttl):
                held = await backend.acquire(self.name, self.holder_id, self.ttl)
        except TimeoutError as exc:
            raise LeaseError(f"lease {self.name}: no answer from the backend within {self.ttl:g} s") from exc
        if held is None:
            return False
        self._grant(held, asked_at)
        self.acquisitions += 1
        self._notify()
        log.info("ha.lease_acquired", lease=self.name, holder=self.holder_id, token=held.token)
        return True

    async def _renew(self, backend: LeaseBackend) -> bool:
        current = self._held
        if current is None:
            return False
        if not self.is_held():
            self._lose("expired before renewal")
            return False
        asked_at = self._clock()
        within = self.remaining()
        try:
            if within <= 0:  # expired since is_held(): send nothing (timeout(0) would start the request)
                raise TimeoutError
            async with asyncio.timeout(within):
                held = await backend.renew(self.name, self.holder_id, current, self.ttl)
        except TimeoutError as exc:
            if not self.is_held():
                self._lose("the backend did not answer before expiry")
            raise LeaseError(f"lease {self.name}: renewal unanswered") from exc
        if held is None:
            self._lose("refused by the backend")
            return False
        if self._held is not current:  # released meanwhile
            return False
        self._grant(held, asked_at)
        return True

    async def release(self) -> None:
        """Give the lease up now (a clean shutdown): a successor need not wait for the expiry."""
        await self._release(self.backend)

    async def _release(self, backend: LeaseBackend) -> None:
        held = self._held
        self._deadline = 0.0
        self._held = None
        if held is not None:
            self._notify()
            with contextlib.suppress(BreakglassError, TimeoutError):
                async with asyncio.timeout(self.ttl):
                    await backend.release(self.name, self.holder_id, held)
            log.info("ha.lease_released", lease=self.name, holder=self.holder_id, token=held.token)

    async def wait_changed(self, within: float | None = None) -> None:
        """Until the lease is acquired, lost or released (or ``within`` seconds passed)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()
        self._changed.clear()

    async def run(self, stop: asyncio.Event, *, retry: float | None = None) -> None:
        """Hold the lease whenever possible until ``stop``: acquire when free (every ``retry``
        seconds, default a fifth of ``ttl``), renew every third of ``ttl``; release at the end.
        With a ``renewer``, all of it happens in a thread of its own (see the module's docstring)."""
        retry = self.ttl / 5 if retry is None else retry
        self._loop = asyncio.get_running_loop()
        try:
            if self._renewer is None:

                async def pause(seconds: float) -> None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(seconds):
                            await stop.wait()

                await self._keep(self.backend, stop.is_set, pause, retry)
            else:
                await self._run_in_thread(stop, retry)
        finally:
            self._loop = None

    async def _run_in_thread(self, stop: asyncio.Event, retry: float) -> None:
        halt = threading.Event()
        self._beat = self._clock()
        thread = threading.Thread(
            target=self._thread, args=(halt, retry), name=f"lease {self.name}", daemon=True
        )
        thread.start()
        try:
            while not stop.is_set() and thread.is_alive():
                self._beat = self._clock()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ttl / 10):
                        await stop.wait()
        finally:
            halt.set()  # the thread releases the lease and closes its connection
            wake = self._wake
            if wake is not None:
                with contextlib.suppress(RuntimeError):  # its loop ended meanwhile
                    wake()
            await asyncio.shield(asyncio.to_thread(thread.join, 2 * self.ttl + 1))

    def _thread(self, halt: threading.Event, retry: float) -> None:
        assert self._renewer is not None
        backend = self._renewer()

        async def keep() -> None:
            stopped, loop = asyncio.Event(), asyncio.get_running_loop()
            self._wake = lambda: loop.call_soon_threadsafe(stopped.set)
            if halt.is_set():  # set before ``_wake`` was there to be called
                stopped.set()

            async def pause(seconds: float) -> None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await stopped.wait()

            try:
                await self._keep(backend, stopped.is_set, pause, retry, beat=True)
            finally:
                with contextlib.suppress(BreakglassError, TimeoutError):
                    await backend.close()

        try:
            asyncio.run(keep())
        except Exception:  # a thread's exception would only reach stderr: say it in the log
            log.exception("ha.lease_thread_crashed", lease=self.name, holder=self.holder_id)
            self._lose("the renewing thread failed")
        finally:
            self._wake = None

    async def _keep(
        self,
        backend: LeaseBackend,
        stopped: Callable[[], bool],
        pause: Callable[[float], Awaitable[None]],
        retry: float,
        *,
        beat: bool = False,
    ) -> None:
        """The lease's loop on ``backend``; ``beat``: skip renewing while the main loop is stalled."""
        stalled = False
        try:
            while not stopped():
                was, stalled = stalled, beat and self._clock() - self._beat > self.stall_limit
                if stalled and not was:
                    self.stalls += 1
                    stalled_s = round(self._clock() - self._beat, 3)
                    log.warning("ha.lease_loop_stalled", lease=self.name, holder=self.holder_id,
                                seconds=stalled_s, held=self.is_held())  # fmt: skip
                try:
                    if stalled:
                        if self._held is not None and not self.is_held():
                            self._lose("expired: the main loop stalled past the stall limit")
                    elif self.is_held():
                        await self._renew(backend)
                    else:
                        if self._held is not None:
                            self._lose("expired: not renewed in time")
                        await self._acquire(backend)
                except BreakglassError as exc:
                    log.warning("ha.lease_backend_failed", lease=self.name, error=str(exc))
                wait = self.ttl / 3 if self.is_held() else retry
                if self.is_held() and not stalled:  # never sleep past the local deadline unrenewed
                    wait = min(wait, max(self.remaining() - self.ttl / 3, 0.01))
                await pause(min(wait, self.ttl / 10) if stalled else wait)
        finally:
            await self._release(backend)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
