"""``GET /metrics``: Prometheus exposition of every breakglass metric (viewer role; in the API's child
process, the pipeline's metrics asked over the bridge and the API's own;
configure Prometheus with ``authorization: {credentials: <token>}``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
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
async def metrics(request: Request, _who: Viewer) -> Response:
    exposition = request.app.state.ctx.app.exposition
    text = await exposition() if exposition is not None else generate_latest(REGISTRY)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
