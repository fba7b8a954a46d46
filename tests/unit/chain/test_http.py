"""chain.http against real local HTTP servers (aiohttp's, and a raw socket server for what aiohttp
does not send): keep-alive reuse, Content-Length, chunked and to-the-end bodies, gzip, basic
authorization from the URL, timeouts, a server that closes the connection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from breakglass.chain.http import HttpError, HttpPool

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def echo_app(seen: list[web.Request]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        body = await request.read()
        if request.query.get("mode") == "chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for i in range(0, len(body), 3):
                await response.write(body[i : i + 3])
            await response.write_eof()
            return response
        if request.query.get("mode") == "gzip":
            return web.Response(body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
        return web.Response(body=body, status=int(request.query.get("status", "200")))

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    return app


async def test_requests_reuse_one_keep_alive_connection_and_get_their_own_answers(serve: Serve) -> None:
    seen: list[web.Request] = []
    pool = HttpPool(await serve(echo_app(seen)) + "/rpc/key", timeout=5)
    answers = [await pool.post(f'{{"n":{i}}}'.encode()) for i in range(5)]
    assert answers == [(200, f'{{"n":{i}}}'.encode()) for i in range(5)]
    assert len({r.transport for r in seen}) == 1 and seen[0].path == "/rpc/key"
    assert seen[0].headers["Content-Type"] == "application/json"
    together = await asyncio.gather(*(pool.post(b"x" * i) for i in range(1, 9)))
    assert together == [(200, b"x" * i) for i in range(1, 9)]
    await pool.close()


@pytest.mark.parametrize("mode", ["chunked", "gzip"])
async def test_chunked_and_gzip_answers_are_assembled_and_decoded(mode: str, serve: Serve) -> None:
    pool = HttpPool(await serve(echo_app([])) + f"/?mode={mode}", timeout=5)
    body = b'{"jsonrpc":"2.0","id":1,"result":"' + b"ab" * 5000 + b'"}'
    assert await pool.post(body) == (200, body)
    assert await pool.post(b"[]") == (200, b"[]")  # and the connection is still usable
    await pool.close()


async def test_the_status_is_handed_over_and_user_info_becomes_basic_authorization(serve: Serve) -> None:
    seen: list[web.Request] = []
    base = await serve(echo_app(seen))
    pool = HttpPool(base.replace("http://", "http://user:p%40ss@") + "/?status=503", timeout=5)
    assert await pool.post(b"{}") == (503, b"{}")
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    await pool.close()


class RawServer:
    """Answers every request on a connection with ``answer``; closes it after if ``close``."""

    def __init__(self, server: asyncio.Server, writers: list[asyncio.StreamWriter]) -> None:
        self.server = server
        self.writers = writers

    async def close(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self.server.wait_closed()


async def raw_server(answer: bytes, *, close: bool) -> tuple[RawServer, str]:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client or the test closed the connection
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
            if close:
                writer.close()
                return

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return RawServer(server, writers), f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def test_an_answer_without_length_runs_to_the_connection_end_and_is_not_reused() -> None:
    server, url = await raw_server(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[1,2]", close=True)
    pool = HttpPool(url, timeout=5)
    assert await pool.post(b"{}") == (200, b"[1,2]")
    assert await pool.post(b"{}") == (200, b"[1,2]")  # a new connection
    await pool.close()
    await server.close()


async def test_a_connection_closed_before_the_answer_and_a_silent_server_are_errors() -> None:
    server, url = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1]", close=True)
    with pytest.raises(HttpError, match="closed"):
        await HttpPool(url, timeout=5).post(b"{}")
    await server.close()
    silent, url = await raw_server(b"", close=False)
    with pytest.raises(TimeoutError):
        await HttpPool(url, timeout=0.2).post(b"{}")
    await silent.close()
    with pytest.raises(HttpError, match="connect"):
        await HttpPool("http://127.0.0.1:1/", timeout=5).post(b"{}")


async def test_garbage_instead_of_http_is_an_error() -> None:
    server, url = await raw_server(b"SSH-2.0-OpenSSH\r\n\r\n", close=False)
    with pytest.raises(HttpError, match="malformed"):
        await HttpPool(url, timeout=5).post(b"{}")
    await server.close()


def test_a_pool_is_used_under_one_event_loop_after_another() -> None:
    seen: list[web.Request] = []

    async def one(pool: HttpPool | None) -> HttpPool:
        app = echo_app(seen)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        pool = pool or HttpPool(f"http://127.0.0.1:{runner.addresses[0][1]}/", timeout=5)
        pool._port = runner.addresses[0][1]  # the new loop's server
        assert await pool.post(b"1") == (200, b"1")
        await runner.cleanup()
        return pool

    pool = asyncio.run(one(None))
    asyncio.run(one(pool))
    assert len(seen) == 2
