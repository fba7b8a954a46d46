"""The HTTP layers around every route: request metrics, security headers, redaction of secrets,
``OPTIONS`` answers.

Pure ASGI middleware (no buffering of streams except where stated), so the live event stream flows
through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from breakglass.api.routes.metrics import REQUESTS
from breakglass.logs import Redactor

__all__ = ["CSP", "AllowedMethods", "RedactSecrets", "RequestMetrics", "SecurityHeaders"]

CSP = "; ".join(
    [
        "default-src 'self'",
        # htmx evaluates hx-on attributes and trigger filters; no inline <script> is ever allowed.
        "script-src 'self' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)


class SecurityHeaders:
    """No framing (clickjacking a "Submit signature" button), no MIME sniffing, no cross-site
    referrers, no caching of authenticated answers, and a CSP that allows only this origin."""

    HEADERS = (
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in present]
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestMetrics:
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


class RedactSecrets:
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


def _routes(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers as nodes
        out += _routes(included.routes) if included is not None else [route]
    return out


class AllowedMethods:
    """``OPTIONS`` on a path answers ``204`` with ``Allow`` naming its methods (RFC 9110), instead
    of a 405 without one; a path nothing serves goes on to its 404. No CORS: the API is same-origin."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        methods: set[str] = set()
        for route in _routes(self._routes()):
            if isinstance(route, Mount):
                continue
            match, _child = route.matches(scope)
            if match is not Match.NONE:
                methods |= set(getattr(route, "methods", None) or ())
        if not methods:
            await self.app(scope, receive, send)
            return
        if "GET" in methods:
            methods.add("HEAD")
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        await Response(status_code=204, headers={"Allow": allow})(scope, receive, send)
