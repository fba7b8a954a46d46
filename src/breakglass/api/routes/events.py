"""``GET /api/v1/events``: the live event stream (server-sent events) for dashboards and tools."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.auth import Principal, TokenStore
from breakglass.api.context import ApiContext, Ctx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=GuardedRoute)


async def _while_authorised(ctx: ApiContext, who: Principal) -> AsyncIterator[str]:
    """The hub's stream for as long as the caller's token stays valid. A stream outlives the request
    that authorised it, so revocation is checked again at least every ``ctx.live_recheck`` seconds
    (the heartbeat guarantees the loop turns that often)."""
    checked = time.monotonic()
    async for chunk in ctx.hub.stream(heartbeat=ctx.live_recheck):
        if time.monotonic() - checked >= ctx.live_recheck:
            async with ctx.reading() as session:
                if await TokenStore(session).by_id(who.token_id) is None:
                    return
            checked = time.monotonic()
        yield chunk


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(ctx: Ctx, who: Viewer) -> StreamingResponse:
    """Each event is ``event: <topic>`` (alerts, incidents, actions, timeline, findings) with the
    message as JSON in ``data``. Comment lines (``: ping``) keep an idle stream open. The stream
    ends within ``live_recheck`` seconds of its token being revoked."""
    return StreamingResponse(
        _while_authorised(ctx, who),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
