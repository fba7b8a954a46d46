"""Run the whole process: the pipeline's components and the HTTP server (uvicorn), started and stopped
together. ``breakglass serve`` calls :func:`serve`; the browser tests run the same function."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from breakglass.app import App
from breakglass.errors import StageFailed
from breakglass.logs import get_logger

__all__ = ["ServerThread", "serve"]

T = TypeVar("T")

log = get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server, telling ``on_started`` once it listens (it has no such hook of its own)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[uvicorn.Server], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started(self)


async def serve(
    app: App,
    api: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    forwarded_allow_ips: str | None = None,
    on_started: Callable[[uvicorn.Server], None] | None = None,
    stop: asyncio.Event | None = None,
    stages: bool = True,
) -> None:
    """Start the app and every component with a ``run(stop)``, serve HTTP until interrupted (or
    ``stop`` is set), then stop the components and close the app. A component that fails stops the
    server too: a dashboard over a dead pipeline would look calm while nothing is watched; ``serve``
    then raises ``StageFailed`` (``breakglass serve`` exits with code 5).

    ``X-Forwarded-*`` headers are believed only from ``forwarded_allow_ips`` (comma-separated proxy
    addresses); by default from nobody, so no local process can claim HTTPS or another client
    address by setting them.

    One process: the tests, the drills and ``ServerThread`` run it so. ``breakglass serve`` runs the
    stages and the API in separate processes (``api/process.py``), whose child calls this with
    ``stages=False``: the HTTP server only."""
    stop = stop or asyncio.Event()
    server = _Server(
        uvicorn.Config(
            api,
            host=host,
            port=port,
            log_config=None,  # structlog (configured by the CLI) owns the output
            proxy_headers=bool(forwarded_allow_ips),
            forwarded_allow_ips=forwarded_allow_ips or "",
            server_header=False,
        ),
        on_started,
    )
    tasks: list[asyncio.Task[None]] = []
    stages_failed: list[StageFailed] = []
    if stages:
        await app.start()
        app.subscribe()  # every consumer before any producer: nothing published is lost while one starts

    def failed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = app.redactor.text(str(task.exception()))
            log.error("component failed; stopping", component=task.get_name(), error=error)
            stages_failed.append(StageFailed(task.get_name(), error))
            server.should_exit = True

    for name, runner in app.components.runners() if stages else []:
        task = asyncio.create_task(runner.run(stop), name=name)
        task.add_done_callback(failed)
        tasks.append(task)

    async def stop_server_when_asked() -> None:
        await stop.wait()
        server.should_exit = True

    stopper = asyncio.create_task(stop_server_when_asked())
    try:
        await server.serve()
    finally:
        stop.set()
        stopper.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(10):
                    await task  # the timeout cancels the task
        await app.close()
    if stages_failed:
        raise stages_failed[0]  # the first: the others were most likely stopped by it


class ServerThread:
    """:func:`serve` on its own event loop in a background thread: for tests, drills and notebooks
    that need a running breakglass next to synchronous code (a browser driver, a fuzzer).

    ``build`` runs on the server's loop and returns the app and its API; ``run(coro)`` executes a
    coroutine there (publish on the bus, query the store) and returns its result.
    """

    def __init__(
        self,
        build: Callable[[], Awaitable[tuple[App, FastAPI]]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._build = build
        self.host = host
        self.port = port or _free_port(host)
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="breakglass-serve", daemon=True)
        self.app: App | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self.app, api = await self._build()
            await serve(self.app, api, host=self.host, port=self.port, stop=self._stop,
                        on_started=lambda _server: self._started.set())  # fmt: skip

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # handed to the caller by start() and stop()
            self._error = exc
        finally:
            self._started.set()
            self.loop.close()

    def start(self, timeout: float = 30) -> ServerThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"breakglass did not start within {timeout:g} s")
        if self._error is not None:
            raise self._error
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 30) -> None:
        if self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"breakglass did not stop within {timeout:g} s")
        if self._error is not None:
            raise self._error


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
