"""``GET /api/v1/health``: is the store reachable, how many live clients, which version; and the
probes for load balancers and supervisors, ``GET /readyz`` and ``GET /livez`` (no token: they say
only which checks pass, ``breakglass.health``)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from breakglass import __version__
from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import Ctx

__all__ = ["Health", "Probe", "probes", "router"]

router = APIRouter(prefix="/api/v1", tags=["health"], route_class=GuardedRoute)
probes = APIRouter(tags=["health"])

_STARTED = time.monotonic()


class Health(BaseModel):
    status: str
    """``ok`` when every check passes, ``degraded`` otherwise (the store unreachable, or refusing the
    pipeline's writes: detection and containment go on, the record lags; docs/reliability.md)."""
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
    # A locked SQLite still answers reads: what the pipeline saw of its writes says more.
    store_health = ctx.app.components.store.health
    await store_health.refresh()  # the API's own process asks the pipeline's
    checks["store_writes"] = "ok"
    if not store_health.available:
        since = time.time() - (store_health.since or time.time())
        waiting = sum(store_health.backlog().values())
        checks["store_writes"] = f"unavailable for {since:.0f} s; {waiting} item(s) waiting"
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return Health(
        status=status,
        version=__version__,
        uptime_seconds=round(time.monotonic() - _STARTED, 3),
        checks=checks,
        live_clients=ctx.hub.clients,
    )


class Probe(BaseModel):
    status: str
    """``ok`` or ``fail``."""
    checks: dict[str, str]
    """check name -> ``ok`` or ``fail: why``"""


_PROBE_ANSWERS: dict[int | str, dict[str, object]] = {503: {"model": Probe, "description": "a check fails"}}


@probes.get("/readyz", response_model=Probe, responses=_PROBE_ANSWERS)
async def readyz(request: Request) -> JSONResponse:
    """Ready for traffic: follower caught up, responder started with a funded key, store writable."""
    report = await request.app.state.ctx.app.health.readiness()
    return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)


@probes.get("/livez", response_model=Probe, responses=_PROBE_ANSWERS)
async def livez(request: Request) -> JSONResponse:
    """Alive: no stage loop is stuck (a supervisor restarts the process when this fails)."""
    report = await request.app.state.ctx.app.health.liveness()
    return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)
