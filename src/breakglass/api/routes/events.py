"""``GET /api/v1/events``: the live event stream (server-sent events) for dashboards and tools."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from breakglass.api.access import Viewer
from breakglass.api.context import Ctx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["events"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(ctx: Ctx, _who: Viewer) -> StreamingResponse:
    """Each event is ``event: <topic>`` (alerts, incidents, actions, timeline, findings) with the
    message as JSON in ``data``. Comment lines (``: ping``) keep an idle stream open."""
    return StreamingResponse(
        ctx.hub.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
