"""``/api/v1/silences``: list (viewer); create and expire (responder). Silences are never deleted."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from breakglass.alerts.models import Silence
from breakglass.api.access import GuardedRoute, Responder, Viewer
from breakglass.api.context import Ctx
from breakglass.api.schemas import INT32_MAX, NOT_FOUND, ApiInput, BodyInt

__all__ = ["SilenceIn", "SilenceOut", "router"]

router = APIRouter(prefix="/api/v1/silences", tags=["silences"], route_class=GuardedRoute)

_MS_MAX = 2**53  # JSON-safe integers; far beyond any real deadline
INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "invalid input, a matcher that does not parse (a bad regex), or a window that ends "
        "before it starts"
    }
}


class SilenceOut(BaseModel):
    id: int
    matchers: list[str]
    created_by: str
    comment: str
    created_at: int
    starts_at: int
    ends_at: int
    active: bool

    @classmethod
    def of(cls, row: Silence, now_ms: int) -> SilenceOut:
        return cls(id=row.id, matchers=list(row.matchers), created_by=row.created_by, comment=row.comment,
                   created_at=row.created_at, starts_at=row.starts_at, ends_at=row.ends_at,
                   active=row.starts_at <= now_ms < row.ends_at)  # fmt: skip


_MATCHER = r"^\s*[A-Za-z_][A-Za-z0-9_.-]*\s*(=~|!~|!=|>=|<=|=|>|<)[^\x00]*$"


class SilenceIn(ApiInput):
    """Exactly one of ``ends_at`` and ``duration_minutes``."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["ends_at"]}, {"required": ["duration_minutes"]}]}
    )

    matchers: list[Annotated[str, Field(min_length=1, max_length=500, pattern=_MATCHER)]] = Field(
        min_length=1, max_length=20
    )
    """Label matchers, all of which must match: ``name=value``, ``!=``, ``=~regex``, ``!~regex``."""
    comment: str = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
    """Why (not blank)."""
    ends_at: BodyInt | None = Field(default=None, ge=0, le=_MS_MAX)
    """End, in ms since the epoch; or give ``duration_minutes``."""
    duration_minutes: BodyInt | None = Field(default=None, ge=1, le=60 * 24 * 365)
    starts_at: BodyInt | None = Field(default=None, ge=0, le=_MS_MAX)


@router.get("", response_model=list[SilenceOut])
async def list_silences(ctx: Ctx, _who: Viewer, active: Annotated[bool, Query()] = False) -> list[SilenceOut]:
    """Newest first; ``active=true`` for those muting right now."""
    now = ctx.clock.now_ms()
    async with ctx.reading() as session:
        rows = await ctx.silences.list(session, active_only=active)
    return [SilenceOut.of(row, now) for row in rows]


@router.post("", response_model=SilenceOut, status_code=201, responses=INVALID)
async def create_silence(body: SilenceIn, ctx: Ctx, who: Responder) -> SilenceOut:
    now = ctx.clock.now_ms()
    if (body.ends_at is None) == (body.duration_minutes is None):
        raise HTTPException(422, "give exactly one of ends_at or duration_minutes")
    start = body.starts_at if body.starts_at is not None else now
    ends_at = body.ends_at if body.ends_at is not None else start + (body.duration_minutes or 0) * 60_000
    try:
        async with ctx.transaction() as session:
            # The service writes its own audit record (silence.create) with the creator as actor.
            row = await ctx.silences.create(session, matchers=body.matchers, created_by=who.name,
                                            comment=body.comment, ends_at=ends_at,
                                            starts_at=body.starts_at)  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return SilenceOut.of(row, now)


@router.post("/{silence_id}/expire", response_model=SilenceOut, responses=NOT_FOUND)
async def expire_silence(
    silence_id: Annotated[int, Field(ge=1, le=INT32_MAX)], ctx: Ctx, who: Responder
) -> SilenceOut:
    """End a silence now (audited by the service); expiring an ended one changes nothing."""
    async with ctx.transaction() as session:
        row = await ctx.silences.expire(session, silence_id, actor=who.name)
    return SilenceOut.of(row, ctx.clock.now_ms())
