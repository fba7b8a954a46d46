"""Dashboard actions (responder role): HTMX form posts that call the REST API's route functions, so
the audit records, checks and errors are the API's own, then answer with the refreshed fragment.

A refused action (a lifecycle rule, a bad signature) is answered ``422`` with the fragment it came
from and the reason in it; the page's htmx configuration swaps 422 answers in like successes. The CSRF
__all__ = ["router"]

check has already happened in the access middleware.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from breakglass.api.access import GuardedRoute, Responder
from breakglass.api.context import Ctx
from breakglass.api.routes import incidents as incidents_api
from breakglass.api.routes import safe as safe_api
from breakglass.api.routes import silences as silences_api
from breakglass.errors import BreakglassError
from breakglass.incidents.models import IncidentState, Resolution
from breakglass.web.pages import actions_view, incident_panel
from breakglass.web.templating import render

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=GuardedRoute)


def _message(exc: Exception) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]) for e in exc.errors())
    return str(exc)


def _status(flash: dict[str, str]) -> int:
    return 422 if "error" in flash else 200


async def _panel(request: Request, ctx: Ctx, who: Responder, incident_id: str, **flash: str) -> Response:
    values = {**await incident_panel(ctx, who, incident_id), **flash}
    return render(request, "partials/incident_panel.html", values, status_code=_status(flash))


@router.post("/incidents/{incident_id}/acknowledge")
async def acknowledge(incident_id: str, request: Request, ctx: Ctx, who: Responder) -> Response:
    await incidents_api.acknowledge(incident_id, ctx, who)
    return await _panel(request, ctx, who, incident_id, notice=f"Acknowledged by {who.name}.")


@router.post("/incidents/{incident_id}/transition")
async def transition(
    incident_id: str,
    request: Request,
    ctx: Ctx,
    who: Responder,
    to: Annotated[str, Form()],
    resolution: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = incidents_api.TransitionIn(
            to=IncidentState(to),
            resolution=Resolution(resolution) if resolution else None,
            reason=reason or None,
        )
        await incidents_api.transition(incident_id, body, ctx, who)
    except (BreakglassError, ValueError, HTTPException) as exc:
        return await _panel(request, ctx, who, incident_id, error=_message(exc))
    return await _panel(request, ctx, who, incident_id, notice=f"Moved to {to}.")


@router.post("/incidents/{incident_id}/notes")
async def add_note(
    incident_id: str, request: Request, ctx: Ctx, who: Responder, text: Annotated[str, Form()] = ""
) -> Response:
    try:
        await incidents_api.add_note(incident_id, incidents_api.NoteIn(text=text), ctx, who)
    except (BreakglassError, ValueError) as exc:
        return render(request, "partials/flash.html", {"error": _message(exc)}, status_code=422)
    return render(request, "partials/flash.html", {"notice": "Note added."})


@router.post("/silences")
async def create_silence(
    request: Request,
    ctx: Ctx,
    who: Responder,
    matchers: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    duration_minutes: Annotated[str, Form()] = "60",
) -> Response:
    flash: dict[str, str] = {}
    try:
        body = silences_api.SilenceIn(
            matchers=[m.strip() for m in matchers.splitlines() if m.strip()],
            comment=comment,
            duration_minutes=int(duration_minutes),
        )
        created = await silences_api.create_silence(body, ctx, who)
        flash["notice"] = f"Silence {created.id} created."
    except (ValueError, HTTPException) as exc:
        flash["error"] = _message(exc)
    rows = await silences_api.list_silences(ctx, who)
    return render(
        request, "partials/silence_rows.html", {"silences": rows, **flash}, status_code=_status(flash)
    )


@router.post("/silences/{silence_id}/expire")
async def expire_silence(silence_id: int, request: Request, ctx: Ctx, who: Responder) -> Response:
    flash: dict[str, str] = {}
    try:
        await silences_api.expire_silence(silence_id, ctx, who)
        flash["notice"] = f"Silence {silence_id} expired."
    except BreakglassError as exc:
        flash["error"] = _message(exc)
    rows = await silences_api.list_silences(ctx, who)
    return render(
        request, "partials/silence_rows.html", {"silences": rows, **flash}, status_code=_status(flash)
    )


@router.post("/safe/{safe_tx_hash}/signatures")
async def sign(
    safe_tx_hash: str, request: Request, ctx: Ctx, who: Responder, signature: Annotated[str, Form()] = ""
) -> Response:
    flash: dict[str, str] = {}
    try:
        body = safe_api.SignatureIn(signature=signature.strip())
        result = await safe_api.submit_signature(safe_tx_hash, body, ctx, who)
        flash["notice"] = (
            f"Signature of {result.owner} accepted ({len(result.signed_by)}/{result.threshold})."
        )
        if result.executed_tx_hash:
            flash["notice"] += f" Executed in {result.executed_tx_hash}."
        elif result.execution_error:
            flash["error"] = f"Not executed: {result.execution_error}"
    except (BreakglassError, ValueError, HTTPException) as exc:
        flash["error"] = _message(exc)
    values = {**await actions_view(ctx), **flash}
    return render(request, "partials/actions.html", values, status_code=_status(flash))
