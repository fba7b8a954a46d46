"""Request limits, enforced before anything parses a body: its size, and for JSON its nesting depth
and its encoding.

Why before parsing: Python's JSON parser recurses once per nesting level and counts against the
interpreter's recursion limit, which libraries breakglass imports raise to 100,000 (``py_ecc``
through ``eth-account``, ``py-evm`` through ``safe-eth-py``). A body of 100,000 ``[`` overflowed the
C stack before that limit was reached, and the process died (issue 13). :class:`RequestLimits` reads
at most ``max_body`` bytes (``413`` beyond, from ``Content-Length`` before reading anything), then
counts the nesting of a JSON body with a scan that cannot recurse (``422`` beyond ``max_depth``, or
when the body is not UTF-8); only then does the application see the body. It runs after
authentication, so an anonymous caller still learns nothing but ``401``, and the route's role check
runs before its body is parsed (``breakglass.api.access.GuardedRoute``).

``restore_recursion_limit`` (``breakglass.app``; ``build_app`` and ``create_api`` call it) puts the
interpreter's limit back where Python starts it, as a second line for every JSON breakglass reads:
nothing in breakglass needs deep recursion.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from breakglass.app import RECURSION_LIMIT, restore_recursion_limit

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "RECURSION_LIMIT",
    "RequestLimits",
    "json_depth_exceeds",
    "restore_recursion_limit",
]

MAX_BODY_BYTES = 256 * 1024
"""The largest request body read: ten times the largest valid one (a 10,000-character note, each
character a 12-byte escaped surrogate pair, is 120 KiB)."""
MAX_DEPTH = 32
"""The deepest JSON nesting accepted; breakglass's own bodies nest three levels at most."""

_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)  # a string, or a bracket
_OPENERS = frozenset(b"[{")
_JSON_TYPES = (b"application/json",)


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """True when ``body`` nests arrays and objects deeper than ``max_depth`` (strings skipped), found
    by a linear scan: no recursion, whatever the input."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False  # cannot nest deeper than it has brackets: most bodies stop here
    depth = 0
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token[0] in _OPENERS:
            depth += 1
            if depth > max_depth:
                return True
        elif token[0] != ord('"'):
            depth -= 1
    return False


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media in _JSON_TYPES or media.endswith(b"+json")
    return False


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLimits:
    """Bound every HTTP request body (``max_body`` bytes) and every JSON body's nesting
    (``max_depth``) before the application reads it; the body is then replayed to the application."""

    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)  # routes that take a body are never reached this way
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, receive, send, 413, f"request body over {self.max_body} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(scope, receive, send, 413, f"request body over {self.max_body} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(scope):
            problem = self._json_problem(body)
            if problem is not None:
                await self._refuse(scope, receive, send, 422, problem)
                return
        await self.app(scope, _replay(body, receive), send)

    def _json_problem(self, body: bytes) -> str | None:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"request body is not UTF-8 (byte {exc.start})"
        if json_depth_exceeds(body, self.max_depth):
            return f"JSON nested deeper than {self.max_depth} levels"
        return None

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        headers = {"Connection": "close"} if status == 413 else None  # the rest of the body is not read
        await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: a disconnect, when it comes

    return replay
