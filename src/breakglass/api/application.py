"""``create_api(app)``: the FastAPI application serving the REST API, the live stream and the dashboard.

Built from the components ``breakglass.app.build_app`` wired; it adds no logic of its own beyond
access control. Layers, outermost first: security headers (outside Starlette's error handler, so a
500 carries them too), request metrics, secret redaction of bodies, authentication, ``OPTIONS``
answers, request limits (``breakglass.api.limits``: body size and JSON depth, before anything
parses), then the routers, whose role check runs before the body is parsed
(``breakglass.api.access.GuardedRoute``). Every error is ``{"detail": ...}`` (``Problem``); invalid
input is a 422 listing each problem without echoing the input. The interactive docs pages are off:
they load scripts from a CDN, and nothing here may fetch from the internet at run time. The spec
itself is at ``/openapi.json``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from breakglass import __version__
from breakglass.api.access import AccessMiddleware, make_authenticator
from breakglass.api.auth import SessionCodec
from breakglass.api.context import ApiContext
from breakglass.api.events import EventHub
from breakglass.api.limits import RequestLimits
from breakglass.api.middleware import AllowedMethods, RedactSecrets, RequestMetrics, SecurityHeaders
from breakglass.api.routes import ROUTERS
from breakglass.app import App, restore_recursion_limit
from breakglass.errors import ChainError, ResponseError, StoreError
from breakglass.incidents.errors import IncidentNotFound, InvalidTransition
from breakglass.logs import Redactor

__all__ = ["create_api"]

DESCRIPTION = """Incidents, alerts, silences, timeline, response actions and Safe signatures of a
breakglass deployment. Every call needs `Authorization: Bearer <token>` (create one with
`breakglass tokens create`); roles are viewer < responder < admin. Live events: `GET /api/v1/events`
(server-sent events)."""


def _clean(text: str) -> str:
    """``text`` with any lone surrogate replaced: it could not be encoded as UTF-8 (a 500)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


async def _invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    """422 with each problem's place and reason; never the input (it may not even encode)."""
    assert isinstance(exc, RequestValidationError)
    issues = [
        {
            "loc": [part if isinstance(part, int) else _clean(str(part)) for part in error.get("loc", ())],
            "msg": _clean(str(error.get("msg", ""))),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": issues}, status_code=422)


def _error_handlers(api: FastAPI, redactor: Redactor) -> None:
    """Library errors become HTTP answers with their (redacted) message; nothing else is said."""

    def answer(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": _clean(redactor.text(str(exc)))}, status_code=status)

        return handler

    def said(status: int, detail: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_request: Request, _exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": detail}, status_code=status)

        return handler

    api.add_exception_handler(RequestValidationError, _invalid_input)
    api.add_exception_handler(IncidentNotFound, answer(404))
    api.add_exception_handler(InvalidTransition, answer(409))
    api.add_exception_handler(ResponseError, answer(422))
    api.add_exception_handler(StoreError, answer(503))
    api.add_exception_handler(ChainError, answer(503))
    # A driver's own message may quote the URL and its password: only a fixed sentence goes out.
    api.add_exception_handler(OperationalError, said(503, "the store does not answer"))
    api.add_exception_handler(InterfaceError, said(503, "the store does not answer"))
    api.add_exception_handler(DataError, said(422, "a value does not fit the store"))


class _Api(FastAPI):
    """FastAPI with the security headers outside everything, Starlette's 500 handler included."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def _sessions_of(app: App) -> async_sessionmaker[AsyncSession]:
    return app.components.store.sessions


def create_api(
    app: App,
    *,
    session_secret: str | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    secure_cookies: bool | None = None,
    web: bool = True,
) -> FastAPI:
    """The ASGI application for ``app``. ``session_secret`` signs dashboard cookies; without one a
    random secret is drawn, so sessions end when the process restarts (tokens are unaffected)."""
    restore_recursion_limit()  # imported libraries raise it to 100,000 (see breakglass.api.limits)
    sessions = sessions or _sessions_of(app)
    session_secret = session_secret or secrets.token_urlsafe(48)
    app.redactor.add([session_secret])
    codec = SessionCodec(session_secret)
    hub = EventHub(app.bus, app.redactor)
    ctx = ApiContext(app=app, sessions=sessions, codec=codec, hub=hub, secure_cookies=secure_cookies)

    @asynccontextmanager
    async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await hub.close()

    api = _Api(
        title="breakglass",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.ctx = ctx
    _error_handlers(api, app.redactor)
    for router in ROUTERS:
        api.include_router(router)
    if web:
        from breakglass.web import mount_dashboard  # the dashboard is optional; the API is not

        mount_dashboard(api)
    api.add_middleware(RequestLimits)
    api.add_middleware(AllowedMethods, routes=lambda: api.routes)
    api.add_middleware(AccessMiddleware, authenticate=make_authenticator(sessions, codec),
                       cookie_name=codec.cookie_name)  # fmt: skip
    api.add_middleware(RedactSecrets, redactor=app.redactor)
    api.add_middleware(RequestMetrics)
    return api
