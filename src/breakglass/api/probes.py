"""``breakglass serve --role ...`` without ``api``: the stages of the chosen roles and, on the configured
address, the two probes alone (``GET /readyz``, ``GET /livez``: this process's checks, no token), so a
supervisor or a load balancer can ask every process, whatever it runs. No API, no dashboard: those are
the ``api`` role's (``api/process.py``)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from breakglass.api.server import serve
from breakglass.app import App

__all__ = ["probes_only", "serve_roles"]


def probes_only(app: App) -> FastAPI:
    """An HTTP application answering ``/readyz`` and ``/livez`` from ``app.health``, nothing else."""
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await app.health.readiness()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)

    @api.get("/livez")
    async def livez() -> JSONResponse:
        report = await app.health.liveness()
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 503)

    return api


async def serve_roles(app: App, *, host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Run ``app``'s stages and the probes until interrupted (SIGINT, SIGTERM) or ``stop`` is set; a
    stage that fails stops the process, as with every role in one."""
    await serve(app, probes_only(app), host=host, port=port, stop=stop)
