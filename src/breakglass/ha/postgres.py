"""Leases in PostgreSQL: one row per lease, changed only by compare-and-set on the server's clock.

``breakglass_leases(name, holder, token, expires_at)``. Acquire is one ``INSERT ... ON CONFLICT DO
UPDATE ... WHERE expires_at <= clock_timestamp()``: it inserts a new lease with token 1, or takes an
expired one and adds 1 to its token; a held one is left alone (no row back). Renew sets a new expiry
only where (name, holder, token) still match and the holding has not expired; release expires it now.
The row is never deleted, so the token only grows.

Why a row and not an advisory lock. An advisory lock belongs to a database session: a SIGKILLed
holder's session ends when the kernel closes its socket, but a *partitioned* holder's session lives
on at the server until TCP keepalives give up (minutes to hours), so the standby could not take
over; and the holder itself cannot tell when the server let go of its lock, so it cannot stop acting
in time. A row with an expiry on the server's clock answers both: a SIGKILLed or partitioned holder
loses it ``ttl`` after its last renewal, and the holder, counting ``ttl`` from before its own request
(``Lease.is_held``), stops first. The table is the leases' own (created here if missing, under an
advisory transaction lock so that replicas starting together do not race): it is coordination state,
not the store's data, and needs no migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from breakglass.ha.lease import Held, LeaseError
from breakglass.store.db import async_url

__all__ = ["TABLE", "PostgresLeaseBackend"]

TABLE = "breakglass_leases"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    name text PRIMARY KEY,
    holder text NOT NULL,
    token bigint NOT NULL,
    expires_at timestamptz NOT NULL
)"""

_ACQUIRE = text(f"""
INSERT INTO {TABLE} AS l (name, holder, token, expires_at)
VALUES (:name, :holder, 1, clock_timestamp() + make_interval(secs => :ttl))
ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, token = l.token + 1, expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= clock_timestamp()
RETURNING token""")  # noqa: S608 - the table name is a constant

_RENEW = text(f"""
UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => :ttl)
WHERE name = :name AND holder = :holder AND token = :token AND expires_at > clock_timestamp()
RETURNING token""")  # noqa: S608

_RELEASE = text(f"""
UPDATE {TABLE} SET expires_at = clock_timestamp()
WHERE name = :name AND holder = :holder AND token = :token AND expires_at > clock_timestamp()""")  # noqa: S608

_HOLDER = text(f"SELECT holder FROM {TABLE} WHERE name = :name AND expires_at > clock_timestamp()")  # noqa: S608


class PostgresLeaseBackend:
    """Construct (no I/O); the first call connects and creates the table if missing."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._engine: AsyncEngine | None = None
        self._ready = False

    async def _run(self, what: str, statement: Any, params: dict[str, Any]) -> Any:
        if self._engine is None:
            self._engine = create_async_engine(
                async_url(self._url),
                pool_size=1,
                max_overflow=1,
                pool_pre_ping=True,
                connect_args={"connect_timeout": max(1, round(self._connect_timeout))},
            )
        try:
            async with self._engine.begin() as conn:
                if not self._ready:
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": TABLE})
                    await conn.execute(text(_CREATE))
                result = await conn.execute(statement, params)
                row = result.first() if result.returns_rows else None
            self._ready = True
            return row
        except (SQLAlchemyError, OSError) as exc:
            raise LeaseError(f"lease {params.get('name')}: {what} failed: {type(exc).__name__}") from exc

    async def acquire(self, name: str, holder: str, ttl: float) -> Held | None:
        row = await self._run("acquire", _ACQUIRE, {"name": name, "holder": holder, "ttl": ttl})
        return None if row is None else Held(int(row[0]), int(row[0]))

    async def renew(self, name: str, holder: str, held: Held, ttl: float) -> Held | None:
        params = {"name": name, "holder": holder, "token": held.token, "ttl": ttl}
        row = await self._run("renewal", _RENEW, params)
        return None if row is None else held

    async def release(self, name: str, holder: str, held: Held) -> None:
        await self._run("release", _RELEASE, {"name": name, "holder": holder, "token": held.token})

    async def holder(self, name: str) -> str | None:
        """Who holds ``name`` now, if anyone (for status pages and tests)."""
        row = await self._run("read", _HOLDER, {"name": name})
        return None if row is None else str(row[0])

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
