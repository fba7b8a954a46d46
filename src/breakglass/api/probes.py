"""``breakglass serve --role ...`` without ``api``: the stages of the chosen roles and, on the configured
address, the probes (``GET /readyz``, ``GET /livez``: this process's checks, no token) and this
process's ``GET /metrics`` (a viewer token, as on the API), so a supervisor, a load balancer and
Prometheus can ask every process, whatever it runs. No API, no dashboard: those are the ``api``
role's (``api/process.py``)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from breakglass.api.auth import Role, TokenStore
from breakglass.api.server import serve
from breakglass.app import App

__all__ = ["probes_only", "serve_roles"]


def probes_only(app: App) -> FastAPI:
    """An HTTP application answering ``/readyz`` and ``/livez`` from ``app.health`` and ``/metrics``
    from this process's registry, nothing else."""
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await app.health.readiness()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)

    @api.get("/livez")
    async def livez() -> JSONResponse:
        report = await app.health.liveness()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)

    @api.get("/metrics")
    async def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        scheme, _, bearer = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            return JSONResponse({"detail": "a viewer token is needed"}, status_code=401)
        async with app.components.store.sessions() as session:
            principal = await TokenStore(session).verify(bearer.strip())
            await session.commit()  # persists last_used_at
        if principal is None:
            return JSONResponse({"detail": "a viewer token is needed"}, status_code=401)
        if principal.role < Role.VIEWER:
            return JSONResponse({"detail": "the viewer role is needed"}, status_code=403)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return api


async def serve_roles(app: App, *, host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Run ``app``'s stages and the probes until interrupted (SIGINT, SIGTERM) or ``stop`` is set; a
    stage that fails stops the process, as with every role in one (``StageFailed``). SIGINT and SIGTERM
    set ``stop``: uvicorn's own handlers would raise the signal again once it stopped, and a SIGTERM
    would then end the process before the stages are closed, with no exit code of its own."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(app, probes_only(app), host=host, port=port, stop=stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
