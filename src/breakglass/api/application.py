"""``create_api(app)``: the FastAPI application serving the REST API, the live stream and the dashboard.

Built from the components ``breakglass.app.build_app`` wired; it adds no logic of its own beyond
access control. Middleware order (outermost first): request metrics, secret redaction of bodies,
authentication, then the routers. The interactive docs pages are off: they load scripts from a
CDN, and nothing here may fetch from the internet at run time. The spec itself is at ``/openapi.json``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from breakglass import __version__
from breakglass.api.access import AccessMiddleware, make_authenticator
from breakglass.api.auth import SessionCodec
from breakglass.api.context import ApiContext
from breakglass.api.events import EventHub
from breakglass.api.routes import ROUTERS
from breakglass.api.routes.metrics import REQUESTS
from breakglass.app import App
from breakglass.errors import ChainError, ResponseError, StoreError
from breakglass.incidents.errors import IncidentNotFound, InvalidTransition
from breakglass.logs import Redactor
from breakglass.store.db import make_engine, make_sessionmaker

__all__ = ["create_api"]

DESCRIPTION = """Incidents, alerts, silences, timeline, response actions and Safe signatures of a
breakglass deployment. Every call needs `Authorization: Bearer <token>` (create one with
`breakglass tokens create`); roles are viewer < responder < admin. Live events: `GET /api/v1/events`
(server-sent events)."""


class _RequestMetrics:
    """Count requests by route *template* (``/api/v1/incidents/{incident_id}``), never raw paths,
    so an attacker probing URLs cannot blow up the metric's label set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], template, str(status)).inc()


class _RedactSecrets:
    """Last line of defence for "secrets never reach the API": every JSON and HTML body passes the
    application's redactor (configuration secrets, URL credentials) before it leaves. Streams are
    not buffered here; the live-event hub redacts each event itself."""

    _TYPES = (b"application/json", b"text/html")

    def __init__(self, app: ASGIApp, redactor: Redactor) -> None:
        self.app = app
        self._redactor = redactor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def send_redacted(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(self._TYPES):
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = self._redactor.text(b"".join(chunks).decode("utf-8")).encode("utf-8")
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, send_redacted)


def _error_handlers(api: FastAPI, redactor: Redactor) -> None:
    """Library errors become HTTP answers with their (redacted) message; nothing else is said."""

    def answer(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": redactor.text(str(exc))}, status_code=status)

        return handler

    api.add_exception_handler(IncidentNotFound, answer(404))
    api.add_exception_handler(InvalidTransition, answer(409))
    api.add_exception_handler(ResponseError, answer(422))
    api.add_exception_handler(StoreError, answer(503))
    api.add_exception_handler(ChainError, answer(503))


def _sessions_of(app: App) -> async_sessionmaker[AsyncSession]:
    store = app.components.get("store")
    sessions = getattr(store, "sessions", None)
    if isinstance(sessions, async_sessionmaker):
        return sessions
    # No store component wired (yet): open the configured database ourselves.
    return make_sessionmaker(make_engine(app.config.settings.store.url))


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

    api = FastAPI(
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
    api.add_middleware(AccessMiddleware, authenticate=make_authenticator(sessions, codec),
                       cookie_name=codec.cookie_name)  # fmt: skip
    api.add_middleware(_RedactSecrets, redactor=app.redactor)
    api.add_middleware(_RequestMetrics)
    return api
