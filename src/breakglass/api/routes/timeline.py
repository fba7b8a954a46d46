"""``/api/v1/timeline``: the whole hash-chained timeline, which is also the audit log (viewer), and a
check of the chain (admin: it reads every row)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from breakglass.api.access import Admin, GuardedRoute, Viewer
from breakglass.api.context import Ctx
from breakglass.api.schemas import NO_NUL, TimelineOut
from breakglass.timeline import TimelineKind, list_events, verify_chain

__all__ = ["ChainCheck", "router"]

router = APIRouter(prefix="/api/v1/timeline", tags=["timeline"], route_class=GuardedRoute)


class ChainCheck(BaseModel):
    ok: bool
    checked: int
    head_hash: str
    bad_seq: int | None
    reason: str | None


@router.get("", response_model=list[TimelineOut])
async def list_timeline(
    ctx: Ctx,
    _who: Viewer,
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    kind: Annotated[list[TimelineKind] | None, Query()] = None,
    incident_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[TimelineOut]:
    """Chain order from ``after_seq`` (exclusive): page with the last ``seq`` seen, or catch up after
    a live stream reconnects."""
    async with ctx.reading() as session:
        entries = await list_events(session, incident_id=incident_id, kinds=set(kind or ()) or None,
                                    after_seq=after_seq, limit=limit)  # fmt: skip
    return [TimelineOut.of(e) for e in entries]


@router.get("/verify", response_model=ChainCheck)
async def verify(ctx: Ctx, _who: Admin) -> ChainCheck:
    """Recompute every hash; ``bad_seq`` names the first row edited, removed or reordered."""
    async with ctx.reading() as session:
        report = await verify_chain(session)
    return ChainCheck(ok=report.ok, checked=report.checked, head_hash=report.head_hash,
                      bad_seq=report.bad_seq, reason=report.reason)  # fmt: skip
