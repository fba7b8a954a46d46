"""Silences: matchers, who created them and why, and a window; created, listed and expired here.

Silences are never deleted: expiring one sets its end to now, so the record of who muted what stays.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.alerts.models import Silence
from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.clock import Clock
from breakglass.incidents.errors import IncidentNotFound
from breakglass.matchers import matches_all, parse_matchers
from breakglass.timeline import record_audit

__all__ = ["SilenceService", "Silencer"]


class SilenceService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def create(
        self,
        session: AsyncSession,
        *,
        matchers: Sequence[str],
        created_by: str,
        comment: str,
        ends_at: int,
        starts_at: int | None = None,
    ) -> Silence:
        """A new silence; matchers are checked (``ValueError`` names the bad one). Audited."""
        parse_matchers(matchers)
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if not comment.strip():
            raise ValueError("a silence needs a comment saying why")
        now = self.clock.now_ms()
        starts = now if starts_at is None else starts_at
        if ends_at <= starts:
            raise ValueError("a silence must end after it starts")
        row = Silence(matchers=list(matchers), created_by=created_by, comment=comment,
                      created_at=now, starts_at=starts, ends_at=ends_at)  # fmt: skip
        session.add(row)
        await session.flush()
        await record_audit(session, actor=created_by, action="silence.create", at=now,
                           target=f"silence:{row.id}",
                           details={"matchers": list(matchers), "comment": comment,
                                    "starts_at": starts, "ends_at": ends_at})  # fmt: skip
        return row

    async def expire(self, session: AsyncSession, silence_id: int, *, actor: str) -> Silence:
        row = await session.get(Silence, silence_id)
        if row is None:
            raise IncidentNotFound(str(silence_id), "silence")
        now = self.clock.now_ms()
        if row.ends_at > now:
            row.ends_at = max(now, row.starts_at)
            await record_audit(session, actor=actor, action="silence.expire", at=now,
                               target=f"silence:{row.id}")  # fmt: skip
        return row

    async def list(self, session: AsyncSession, *, active_only: bool = False) -> list[Silence]:
        query = select(Silence).order_by(Silence.id.desc())
        if active_only:
            now = self.clock.now_ms()
            query = query.where(Silence.starts_at <= now, Silence.ends_at > now)
        return list((await session.scalars(query)).all())


class Silencer:
    """The muter of active silences."""

    async def mutes(self, ctx: AlertContext, candidate: Candidate) -> str | None:
        query = select(Silence).where(Silence.starts_at <= ctx.now_ms, Silence.ends_at > ctx.now_ms)
        for silence in (await ctx.session.scalars(query.order_by(Silence.id))).all():
            if matches_all(parse_matchers(silence.matchers), candidate.labels):
                return f"silence:{silence.id}"
        return None
