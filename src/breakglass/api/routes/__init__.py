"""The REST API's routers, one per noun; ``ROUTERS`` is the order they are mounted in."""

from fastapi import APIRouter

from breakglass.api.routes import (
    actions,
    alerts,
    events,
    health,
    incidents,
    invariants,
    metrics,
    safe,
    silences,
    taxii,
    timeline,
    tokens,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    incidents.router,
    alerts.router,
    silences.router,
    timeline.router,
    actions.router,
    safe.router,
    invariants.router,
    events.router,
    health.router,
    taxii.router,
    health.probes,
    tokens.router,
    metrics.router,
)
