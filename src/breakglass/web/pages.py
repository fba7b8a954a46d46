"""Dashboard pages and the HTMX fragments they refresh when live events arrive (viewer role).

Pages render their data once; each live panel then re-fetches its fragment when the server-sent
event of its topic arrives (``static/live.js`` turns each into ``live:<topic>`` on the body;
panels say ``hx-trigger="live:incidents from:body"``). The data comes from the same
route functions as the REST API, so the dashboard cannot show what the API would not.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import ApiContext, Ctx
from breakglass.api.routes import actions as actions_api
from breakglass.api.routes import alerts as alerts_api
from breakglass.api.routes import incidents as incidents_api
from breakglass.api.routes import silences as silences_api
from breakglass.api.routes.invariants import invariant_health
from breakglass.api.schemas import TimelineOut
from breakglass.incidents.lifecycle import NEXT
from breakglass.incidents.models import IncidentFinding, IncidentState, Resolution
from breakglass.timeline import TimelineKind
from breakglass.web.templating import render

__all__ = ["actions_view", "incident_panel", "router"]

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)

OPEN: set[IncidentState] = {s for s in IncidentState if s is not IncidentState.CLOSED}


async def incident_lists(ctx: ApiContext) -> dict[str, Any]:
    async with ctx.reading() as session:
        open_rows = await ctx.incidents.find(session, states=OPEN, limit=200)
        closed = await ctx.incidents.find(session, states={IncidentState.CLOSED}, limit=20)
    return {
        "open": [incidents_api.IncidentOut.of(r) for r in open_rows],
        "closed": [incidents_api.IncidentOut.of(r) for r in closed],
        "now": ctx.clock.now_ms(),
    }


async def incident_panel(ctx: ApiContext, who: Any, incident_id: str) -> dict[str, Any]:
    detail = await incidents_api.get_incident(incident_id, ctx, who)
    state = IncidentState(detail.incident.state)
    return {
        "d": detail,
        "i": detail.incident,
        "next_states": [s.value for s in IncidentState if s in NEXT[state] and s is not IncidentState.CLOSED],
        "can_close": IncidentState.CLOSED in NEXT[state],
        "resolutions": [r.value for r in Resolution],
    }


async def incident_timeline(ctx: ApiContext, who: Any, incident_id: str) -> list[TimelineOut]:
    """Newest first; audit records are left out here (they repeat the visible event and name the
    token) and stay in ``/api/v1/timeline``."""
    kinds: list[TimelineKind] = [k for k in TimelineKind if k is not TimelineKind.AUDIT]
    entries = await incidents_api.incident_timeline(incident_id, ctx, who, kind=kinds)
    return list(reversed(entries))


async def incident_actions(ctx: ApiContext, incident_id: str) -> list[actions_api.ActionOut]:
    async with ctx.reading() as session:
        query = select(IncidentFinding.fingerprint).where(IncidentFinding.incident_id == incident_id)
        fingerprints = set((await session.scalars(query)).all())
    rows = [r for r in await ctx.ledger.rows() if r.fingerprint in fingerprints]
    return actions_api.summarise(rows)


async def proposals(ctx: ApiContext) -> list[dict[str, Any]]:
    """Pending Safe proposals with what a signer must see; empty without a Safe service."""
    responder = ctx.app.components.respond
    safes = responder.safes if responder is not None else None
    if safes is None:
        return []
    out = []
    for row in await safes.pending():
        try:
            out.append(await safes.describe(row.safe_tx_hash))
        except Exception as exc:
            out.append({"safe_tx_hash": row.safe_tx_hash, "safe": row.safe, "error": str(exc)})
    return out


async def actions_view(ctx: ApiContext) -> dict[str, Any]:
    responder = ctx.app.components.respond
    actions = actions_api.summarise(await ctx.ledger.rows())
    return {
        "pending": [a for a in actions if a.pending],
        "recent": [a for a in actions if not a.pending][:50],
        "proposals": await proposals(ctx),
        "safe_configured": responder is not None and responder.safes is not None,
    }


@router.get("/")
async def index(request: Request, ctx: Ctx, _who: Viewer) -> Response:
    values = {"nav": "incidents", "health": await invariant_health(ctx), **await incident_lists(ctx)}
    return render(request, "incidents.html", values)


@router.get("/ui/incidents")
async def incident_rows(request: Request, ctx: Ctx, _who: Viewer) -> Response:
    return render(request, "partials/incident_rows.html", await incident_lists(ctx))


@router.get("/ui/invariants")
async def invariants(request: Request, ctx: Ctx, _who: Viewer) -> Response:
    return render(request, "partials/invariants.html", {"health": await invariant_health(ctx)})


@router.get("/incidents/{incident_id}")
async def incident_page(incident_id: str, request: Request, ctx: Ctx, who: Viewer) -> Response:
    values = {
        "nav": "incidents",
        **await incident_panel(ctx, who, incident_id),
        "timeline": await incident_timeline(ctx, who, incident_id),
        "alerts": await alerts_api.list_alerts(ctx, who, incident_id=incident_id, limit=50),
        "actions": await incident_actions(ctx, incident_id),
    }
    return render(request, "incident.html", values)


@router.get("/ui/incidents/{incident_id}/panel")
async def panel(incident_id: str, request: Request, ctx: Ctx, who: Viewer) -> Response:
    return render(request, "partials/incident_panel.html", await incident_panel(ctx, who, incident_id))


@router.get("/ui/incidents/{incident_id}/timeline")
async def timeline(incident_id: str, request: Request, ctx: Ctx, who: Viewer) -> Response:
    values = {"timeline": await incident_timeline(ctx, who, incident_id)}
    return render(request, "partials/timeline.html", values)


@router.get("/actions")
async def actions_page(request: Request, ctx: Ctx, _who: Viewer) -> Response:
    return render(request, "actions.html", {"nav": "actions", **await actions_view(ctx)})


@router.get("/ui/actions")
async def actions_fragment(request: Request, ctx: Ctx, _who: Viewer) -> Response:
    return render(request, "partials/actions.html", await actions_view(ctx))


@router.get("/silences")
async def silences_page(request: Request, ctx: Ctx, who: Viewer) -> Response:
    rows = await silences_api.list_silences(ctx, who)
    return render(request, "silences.html", {"nav": "silences", "silences": rows})


@router.get("/ui/silences")
async def silences_fragment(request: Request, ctx: Ctx, who: Viewer) -> Response:
    rows = await silences_api.list_silences(ctx, who)
    return render(request, "partials/silence_rows.html", {"silences": rows})
