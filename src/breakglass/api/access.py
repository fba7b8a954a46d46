"""Who may reach what: the authentication middleware, role checks for routes, and CSRF.

Authentication runs as ASGI middleware *before* routing, so an unauthenticated caller learns nothing:
not whether a path exists (no 404 vs 405), not what a body should look like (no 422), only ``401``.
Routes then state the least role they need with :func:`require`. A caller with too small a role gets
``403`` and nothing else, before its body is read: every router is built with
:class:`GuardedRoute`, which checks the role ahead of FastAPI's body parsing (a dependency alone runs
after it, so a viewer's body was parsed, and could crash the parser, before its 403).

CSRF: the browser attaches the session cookie by itself, so a mutating request authenticated by the
cookie must also carry the session's CSRF secret in ``X-CSRF-Token`` (the dashboard sets it on every
HTMX request) and, when the browser sends one, an ``Origin`` of this very host. Bearer-token callers
need neither: nothing sends their header for them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from breakglass.api.auth import Principal, Role, SessionCodec, TokenStore
from breakglass.logs import get_logger

__all__ = [
    "PUBLIC_PATHS",
    "AccessMiddleware",
    "Admin",
    "GuardedRoute",
    "Peer",
    "Responder",
    "Viewer",
    "make_authenticator",
    "require",
    "same_origin",
]

log = get_logger(__name__)

PUBLIC_PATHS = ("/login", "/openapi.json", "/livez", "/readyz")
"""Reachable without a token: the login form, and the spec, which is the same as ``docs/openapi.json``."""
_PUBLIC_PREFIXES = ("/static/",)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Authenticator = Callable[[str | None, str | None], Awaitable[Principal | None]]
"""(bearer token, session cookie) -> principal or None."""


def make_authenticator(sessions: async_sessionmaker[AsyncSession], codec: SessionCodec) -> Authenticator:
    """Resolve a bearer token or a session cookie to a principal, re-checking the token in the store."""

    async def authenticate(bearer: str | None, cookie: str | None) -> Principal | None:
        if bearer is None and cookie is None:
            return None  # no credentials: no database round trip for anonymous traffic
        async with sessions() as session:
            tokens = TokenStore(session)
            principal: Principal | None = None
            if bearer is not None:
                principal = await tokens.verify(bearer)
            elif cookie is not None:
                data = codec.read(cookie)
                row = await tokens.by_id(data.token_id) if data else None
                if data is not None and row is not None:
                    principal = Principal(row.id, row.name, Role.parse(row.role), "session", data.csrf)
            await session.commit()  # persists last_used_at
            return principal

    return authenticate


def same_origin(origin: str | None, host: str | None) -> bool:
    """True when there is no Origin header (not a browser, or a same-origin GET) or it names ``host``."""
    if origin is None:
        return True
    return bool(host) and urlsplit(origin).netloc == host


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    # An Authorization header that is not a bearer token still counts as "presented": a caller that
    # sends garbage must not fall back to a cookie it may not know it has.
    return value.strip() if scheme.lower() == "bearer" else ""


class AccessMiddleware:
    """Authenticate every HTTP request outside :data:`PUBLIC_PATHS` and enforce CSRF for cookies."""

    def __init__(self, app: ASGIApp, authenticate: Authenticator, cookie_name: str) -> None:
        self.app = app
        self._authenticate = authenticate
        self._cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = await self._authenticate(
            _bearer(request.headers.get("authorization")), request.cookies.get(self._cookie_name)
        )
        if principal is None:
            await _unauthenticated(request)(scope, receive, send)
            return
        cookie_write = request.method not in _SAFE_METHODS and principal.via == "session"
        if cookie_write and not _csrf_ok(request, principal):
            log.warning("csrf rejected", path=request.url.path, actor=principal.name)
            await JSONResponse({"detail": "forbidden"}, status_code=403)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES)


def _csrf_ok(request: Request, principal: Principal) -> bool:
    sent = request.headers.get("x-csrf-token", "")
    if not principal.csrf or not hmac.compare_digest(sent.encode(), principal.csrf.encode()):
        return False
    return same_origin(request.headers.get("origin"), request.headers.get("host"))


def _unauthenticated(request: Request) -> Response:
    path = request.url.path
    browser_page = (
        request.method == "GET"
        and not path.startswith("/api/")
        and path != "/metrics"
        and "text/html" in request.headers.get("accept", "")
        and "hx-request" not in request.headers
    )
    if browser_page:
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
    headers = {"WWW-Authenticate": "Bearer"}
    if "hx-request" in request.headers:
        headers["HX-Redirect"] = "/login"  # an expired session mid-page sends HTMX back to the login
    return JSONResponse({"detail": "unauthorized"}, status_code=401, headers=headers)


_BEARER = HTTPBearer(auto_error=False, description="an API token: `breakglass tokens create`")
"""Declares the bearer scheme in the OpenAPI spec; the token itself is checked by the middleware."""


def _principal(request: Request, role: Role) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        # Unreachable behind AccessMiddleware; kept so a route mounted elsewhere still fails closed.
        raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    if principal.role < role:
        raise HTTPException(403, "forbidden")
    return principal


def require(role: Role) -> Callable[..., Principal]:
    """A route dependency: the caller's principal, if its role is at least ``role``; else 403."""

    def dependency(request: Request, _bearer: Annotated[Any, Security(_BEARER)]) -> Principal:
        return _principal(request, role)

    dependency.__name__ = f"require_{role}"
    dependency.least_role = role  # type: ignore[attr-defined]  # read by GuardedRoute
    return dependency


def _least_role(dependant: Dependant) -> Role | None:
    roles = [_least_role(d) for d in dependant.dependencies]
    own = getattr(dependant.call, "least_role", None)
    found = [r for r in [own, *roles] if isinstance(r, Role)]
    return max(found) if found else None


_ERRORS: dict[int, str] = {
    401: "no valid token (send `Authorization: Bearer <token>`)",
    403: "the token's role may not do this (or a dashboard write without its CSRF token)",
    413: "the request body is over the size limit",
    422: "invalid input: `detail` lists each problem (or says why the body could not be read)",
    503: "the store or the chain does not answer",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class GuardedRoute(APIRoute):
    """An API route that checks the caller's role (from its :func:`require` dependency) before
    FastAPI reads and parses the request body; the dependency checks it again, harmlessly.

    It also documents the error answers every route can give, each with the ``Problem`` shape:
    401/403 when a role is required, 413 and 422 when a body may be sent (the request limits apply
    to any), 422 when it takes parameters, and 503.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        from breakglass.api.schemas import Problem  # schemas imports the domain; access stays light

        responses: dict[int | str, dict[str, Any]] = dict(kwargs.pop("responses", None) or {})
        for code, description in _ERRORS.items():
            responses.setdefault(code, {"description": description})
        for status, response in list(responses.items()):
            if int(status) >= 400 and "model" not in response and "content" not in response:
                responses[status] = {**response, "model": Problem}
        super().__init__(path, endpoint, responses=responses, **kwargs)
        takes_body = bool(set(self.methods or ()) & _BODY_METHODS)
        params = self.dependant.path_params or self.dependant.query_params or self.body_field
        unused = set()
        if _least_role(self.dependant) is None:
            unused |= {401, 403}
        if not takes_body:
            unused.add(413)
            if not params:
                unused.add(422)
        for status in unused:
            self.responses.pop(status, None)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Any]]:
        handler = super().get_route_handler()
        role = _least_role(self.dependant)
        if role is None:
            return handler

        async def guarded(request: Request) -> Any:
            _principal(request, role)
            return await handler(request)

        return guarded


Peer = Annotated[Principal, Depends(require(Role.PEER))]
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Responder = Annotated[Principal, Depends(require(Role.RESPONDER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
