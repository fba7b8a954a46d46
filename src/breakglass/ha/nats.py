"""Leases in a NATS JetStream key-value bucket: revision compare-and-set, expiry on the server's clock.

One bucket per lease (``<prefix>-lease-<name>``) whose ``ttl`` is the lease's: the server drops a
holding ``ttl`` seconds after its last write, by its own clock. Acquire is ``create`` (succeeds only
if the key is absent: never written, expired, or released with a delete marker); renew is ``update``
with the revision of our last write (fails if anything else was written since, or the entry
expired); release is ``delete`` with that revision. The fencing token is the revision ``create``
returned: the bucket's stream sequence, which only grows (file storage: also across a server restart),
so every acquisition gets a larger token than any write before it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoStreamResponseError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from breakglass.ha.lease import Held, LeaseError

__all__ = ["NatsLeaseBackend"]

KEY = "holder"


def bucket_name(prefix: str, name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}-lease-{name}")


class NatsLeaseBackend:
    """Construct (no I/O); connects on first use; ``close()`` ends the connection."""

    def __init__(self, url: str, *, prefix: str = "breakglass", connect_timeout: float = 2.0) -> None:
        self._url = url
        self._prefix = prefix
        self._connect_timeout = connect_timeout
        self._nc: Client | None = None
        self._buckets: dict[str, KeyValue] = {}
        self._opening: asyncio.Lock | None = None

    async def _bucket(self, name: str, ttl: float) -> KeyValue:
        bucket = self._buckets.get(name)
        if bucket is not None:
            return bucket
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:  # concurrent first calls share one connection
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = await self._open(name, ttl)
        return bucket

    async def _open(self, name: str, ttl: float) -> KeyValue:
        try:
            if self._nc is None or self._nc.is_closed:
                self._nc = await nats.connect(
                    self._url, connect_timeout=self._connect_timeout, max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2, allow_reconnect=True,
                )  # fmt: skip
            js = self._nc.jetstream()
            config = KeyValueConfig(
                bucket=bucket_name(self._prefix, name), history=1, ttl=ttl, storage=StorageType.FILE
            )
            try:
                bucket = await js.key_value(config.bucket)
            except (NotFoundError, BadRequestError):
                bucket = await js.create_key_value(config)
        except (OSError, TimeoutError, NatsError) as exc:
            raise LeaseError(f"lease {name}: cannot reach NATS: {type(exc).__name__}") from exc
        return bucket

    async def acquire(self, name: str, holder: str, ttl: float) -> Held | None:
        bucket = await self._bucket(name, ttl)
        for attempt in range(3):
            try:
                revision = await _settling(lambda: bucket.create(KEY, _value(holder, ttl)))
            except KeyWrongLastSequenceError:
                return None
            except KeyNotFoundError:
                # nats-py's create: the key was there (wrong last sequence), then gone when it read
                # it back to tell a delete marker from a live holding: the holding expired between
                # the two. Free now: ask again (a live holder would answer "wrong last sequence").
                if attempt == 2:
                    return None
                continue
            except (OSError, TimeoutError, NatsError) as exc:
                raise LeaseError(f"lease {name}: acquire failed: {type(exc).__name__}") from exc
            return Held(int(revision), int(revision))
        return None

    async def renew(self, name: str, holder: str, held: Held, ttl: float) -> Held | None:
        bucket = await self._bucket(name, ttl)
        try:
            revision = await _settling(lambda: bucket.update(KEY, _value(holder, ttl), last=held.handle))
        except KeyWrongLastSequenceError:
            return None
        except (OSError, TimeoutError, NatsError) as exc:
            raise LeaseError(f"lease {name}: renewal failed: {type(exc).__name__}") from exc
        return Held(held.token, int(revision))

    async def release(self, name: str, holder: str, held: Held) -> None:
        bucket = self._buckets.get(name)
        if bucket is None:
            return
        try:
            await bucket.delete(KEY, last=held.handle)
        except KeyWrongLastSequenceError:
            return  # not ours any more
        except (OSError, TimeoutError, NatsError) as exc:
            raise LeaseError(f"lease {name}: release failed: {type(exc).__name__}") from exc

    async def holder(self, name: str, ttl: float) -> str | None:
        """Who holds ``name`` now, if anyone (for status pages and tests)."""
        bucket = await self._bucket(name, ttl)
        try:
            entry = await bucket.get(KEY)
        except (NotFoundError, KeyWrongLastSequenceError):
            return None
        if entry.value is None:
            return None
        return str(json.loads(entry.value)["holder"])

    async def close(self) -> None:
        self._buckets.clear()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None


async def _settling(write: Callable[[], Awaitable[int]], tries: int = 5) -> int:
    """``write()``, again after a moment while the server has no responder for the bucket yet (a
    bucket created an instant ago, by this process or another, answers "no responders" briefly)."""
    for attempt in range(tries):
        try:
            return await write()
        except (NoRespondersError, NoStreamResponseError):
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _value(holder: str, ttl: float) -> bytes:
    return json.dumps({"holder": holder, "ttl": ttl}).encode()
