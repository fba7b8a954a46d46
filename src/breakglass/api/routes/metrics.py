"""``GET /metrics``: Prometheus exposition of every breakglass metric in this process (viewer role;
configure Prometheus with ``authorization: {credentials: <token>}``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

from breakglass.api.access import GuardedRoute, Viewer

__all__ = ["REQUESTS", "router"]

router = APIRouter(tags=["metrics"], route_class=GuardedRoute)

REQUESTS = Counter(
    "breakglass_api_requests",
    "API and dashboard requests by route template, method and status.",
    ["method", "route", "status"],
)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(_who: Viewer) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
