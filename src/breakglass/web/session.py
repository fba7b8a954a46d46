"""Dashboard sign-in and sign-out: an API token is traded for a signed, HttpOnly, SameSite=Strict
session cookie. The token itself is never stored in the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from breakglass.api.access import GuardedRoute, Viewer, same_origin
from breakglass.api.auth import TokenStore
from breakglass.api.context import Ctx
from breakglass.logs import get_logger
from breakglass.web.templating import render

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)
log = get_logger(__name__)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: "//evil.example" and "https://..." would turn login into an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
async def login(
    request: Request, ctx: Ctx, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    # A cross-site page must not be able to sign a victim's browser in under the attacker's token.
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        return Response("forbidden", status_code=403)
    async with ctx.transaction() as session:
        principal = await TokenStore(session).verify(token.strip())
        if principal is not None:
            await ctx.audit(session, principal, "session.login", "dashboard")
    if principal is None:
        log.warning("dashboard login refused", client=request.client.host if request.client else None)
        values = {"next": _safe_next(next), "error": "That token was not accepted."}
        return render(request, "login.html", values, status_code=401)
    cookie, _data = ctx.codec.issue(principal.token_id)
    response = RedirectResponse(_safe_next(next), status_code=303)
    secure = ctx.secure_cookies if ctx.secure_cookies is not None else request.url.scheme == "https"
    response.set_cookie(
        ctx.codec.cookie_name,
        cookie,
        max_age=int(ctx.codec.max_age.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(ctx: Ctx, who: Viewer) -> Response:
    async with ctx.transaction() as session:
        await ctx.audit(session, who, "session.logout", "dashboard")
    response = Response(status_code=204, headers={"HX-Redirect": "/login"})
    response.delete_cookie(ctx.codec.cookie_name, path="/", httponly=True, samesite="strict")
    return response
