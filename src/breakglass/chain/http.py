"""HTTP/1.1 POST over keep-alive connections: the one thing ``chain.rpc``'s transport asks of HTTP.

Why not aiohttp: a backfill sends one batch a window (25 blocks), and aiohttp's request machinery cost
~700 us of CPU a request on anvil (~28 us a block), this module's ~350 (~14 us): measured with a 25-block
window, prefetch 4, 7,000 blocks (docs/detection.md, "Backfill CPU per block"). What it does: ``http``
and ``https`` URLs (user:password in the URL becomes basic authorization), keep-alive connections up to
``limit`` at once (idle ones closed after ``keepalive`` seconds), answers with ``Content-Length``,
``chunked`` or read to the connection's end, gzip or deflate answers decoded, one total ``timeout`` a
request. No redirects, proxies or cookies: a node's JSON-RPC endpoint needs none.

Errors are ``HttpError`` (a subclass of ``OSError``): the transport turns them into its own.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import zlib
from urllib.parse import unquote, urlsplit

__all__ = ["HttpError", "HttpPool"]

_MAX_HEAD = 65536
"""Bytes of status line and headers an answer may send before we give up on it."""


class HttpError(OSError):
    """The endpoint could not be reached, closed the connection or answered something not HTTP."""


class _Connection(asyncio.Protocol):
    """One connection; one request at a time. ``answer`` resolves to (status, body, keep alive)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._head = True  # still reading the status line and headers
        self._length = -1  # Content-Length; -1: chunked (``_chunked``) or to the end
        self._chunked = False
        self._keep = True
        self._encoding = b""
        self._start = 0  # where the body starts in the buffer
        self._body = bytearray()  # a chunked body, assembled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None and not answer.done():
            if not self._head and self._length < 0 and not self._chunked:  # the body ran to the end
                try:
                    self._finish(bytes(self._buffer[self._start :]), keep=False)
                except (ValueError, zlib.error) as error:
                    answer.set_exception(HttpError(f"malformed HTTP answer: {error}"))
            else:
                answer.set_exception(HttpError(f"connection closed: {exc or 'by the server'}"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._buffer.clear()
        self._reset()
        self.transport.write(data)  # request line, headers and body: one write, one segment
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self.close()  # nothing was asked: the connection cannot be trusted with the next answer
            return
        self._buffer += data
        try:
            self._parse()
        except (ValueError, zlib.error) as exc:
            self.close()
            if not self._answer.done():
                self._answer.set_exception(HttpError(f"malformed HTTP answer: {exc}"))

    def _parse(self) -> None:
        buffer = self._buffer
        if self._head:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    raise ValueError("headers too long")
                return
            lines = bytes(buffer[:end]).split(b"\r\n")
            version, _, rest = lines[0].partition(b" ")
            if not version.startswith(b"HTTP/1."):
                raise ValueError(f"status line {lines[0][:40]!r}")
            self._status = int(rest[:3])
            self._keep = version == b"HTTP/1.1"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                value = value.strip().lower()
                if name == b"content-length":
                    self._length = int(value)
                elif name == b"transfer-encoding":
                    self._chunked = value.endswith(b"chunked")
                elif name == b"connection":
                    self._keep = value == b"keep-alive" or (self._keep and value != b"close")
                elif name == b"content-encoding":
                    self._encoding = value
            if self._status < 200:  # 1xx: an interim answer, the real one follows
                del buffer[: end + 4]
                self._reset()
                self._parse()
                return
            self._head = False
            self._start = end + 4
            if self._chunked:
                self._length = -1
        if self._chunked:
            self._parse_chunks()
        elif self._length >= 0 and len(buffer) - self._start >= self._length:
            self._finish(bytes(buffer[self._start : self._start + self._length]), keep=self._keep)

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n", self._start)
            if line_end < 0:
                return
            size = int(bytes(buffer[self._start : line_end]).split(b";")[0], 16)
            if size == 0:  # the last chunk, then trailers (none, usually) up to an empty line
                if buffer.find(b"\r\n\r\n", line_end) < 0:
                    return
                self._finish(bytes(self._body), keep=self._keep)
                return
            if len(buffer) < line_end + 2 + size + 2:
                return
            self._body += buffer[line_end + 2 : line_end + 2 + size]
            self._start = line_end + 2 + size + 2

    def _finish(self, body: bytes, *, keep: bool) -> None:
        if self._encoding in (b"gzip", b"x-gzip", b"deflate"):
            # gzip or zlib wrapper recognised by their header (wbits 47); a bare deflate stream else
            try:
                body = zlib.decompress(body, 47)
            except zlib.error:
                body = zlib.decompress(body, -15)
        elif self._encoding not in (b"", b"identity"):
            raise ValueError(f"content encoding {self._encoding.decode(errors='replace')!r}")
        assert self._answer is not None
        self._answer.set_result((self._status, body, keep))
        self._buffer.clear()


class HttpPool:
    """POSTs to one URL over up to ``limit`` keep-alive connections of the running event loop."""

    def __init__(self, url: str, *, timeout: float, limit: int = 32, keepalive: float = 15.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        self._timeout = timeout
        self._keepalive = keepalive
        self._limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ssl: ssl.SSLContext | None = None
        host = f"[{self._host}]" if ":" in self._host else self._host
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [
            f"POST {target} HTTP/1.1",
            f"Host: {host}",
            "Content-Type: application/json",
            "Accept-Encoding: gzip, deflate",
            "Connection: keep-alive",
        ]
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            head.append(f"Authorization: Basic {base64.b64encode(secret).decode('ascii')}")
        self._head = ("\r\n".join(head) + "\r\nContent-Length: ").encode("latin-1")

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """(status, body) of one POST; ``HttpError`` or ``TimeoutError`` if there is none."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # connections belong to their event loop: a new loop, new ones
            self._idle = []  # (the old loop's: closing them is that loop's business)
            self._slots = asyncio.Semaphore(self._limit)
            self._loop = loop
        data = b"".join((self._head, str(len(body)).encode(), b"\r\n\r\n", body))
        async with self._slots, asyncio.timeout(self._timeout):
            connection = self._take() or await self._connect()
            try:
                status, content, keep = await connection.request(data)
            except BaseException:
                connection.close()  # an answer may still come: never hand this one to another request
                raise
            if keep and not connection.closed:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return status, content

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely to be timed out
            if not connection.closed and now - connection.idle_since < self._keepalive:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        try:
            _transport, connection = await loop.create_connection(
                _Connection, self._host, self._port, ssl=self._ssl if self._tls else None
            )
        except OSError as exc:
            raise HttpError(f"cannot connect: {exc}") from exc
        return connection

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def close(self) -> None:
        """Close the idle connections (those in use close once their request is done or cancelled)."""
        if self._loop is asyncio.get_running_loop():
            self._drop_idle()
        else:
            self._idle = []  # another loop's: closing them there is that loop's business
