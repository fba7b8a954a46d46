"""``GET /api/v1/health``: is the store reachable, how many live clients, which version."""

from __future__ import annotations

import time

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from breakglass import __version__
from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import Ctx

__all__ = ["Health", "router"]

router = APIRouter(prefix="/api/v1", tags=["health"], route_class=GuardedRoute)

_STARTED = time.monotonic()


class Health(BaseModel):
    status: str
    """``ok`` when every check passes, ``degraded`` otherwise."""
    version: str
    uptime_seconds: float
    checks: dict[str, str]
    live_clients: int


@router.get("/health", response_model=Health)
async def health(ctx: Ctx, _who: Viewer) -> Health:
    checks: dict[str, str] = {}
    try:
        async with ctx.reading() as session:
            await session.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except (SQLAlchemyError, OSError) as exc:
        # The exception text may carry a URL with a password: only its class goes out.
        checks["store"] = f"error: {type(exc).__name__}"
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return Health(
        status=status,
        version=__version__,
        uptime_seconds=round(time.monotonic() - _STARTED, 3),
        checks=checks,
        live_clients=ctx.hub.clients,
    )
