"""Dashboard pages (viewer) and the HTMX fragments they refresh when live events arrive."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from breakglass.api.access import Viewer
from breakglass.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index(request: Request, _who: Viewer) -> Response:
    return render(request, "incidents.html", {"nav": "incidents"})
