"""Run the whole process: the pipeline's components and the HTTP server (uvicorn), started and stopped
together. ``breakglass serve`` calls :func:`serve`; the browser tests run the same function."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from breakglass.app import App
from breakglass.logs import get_logger

__all__ = ["serve"]

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
    forwarded_allow_ips: str = "127.0.0.1",
    on_started: Callable[[uvicorn.Server], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the app and every component with a ``run(stop)``, serve HTTP until interrupted (or
    ``stop`` is set), then stop the components and close the app. A component that fails stops the
    server too: a dashboard over a dead pipeline would look calm while nothing is watched."""
    stop = stop or asyncio.Event()
    server = _Server(
        uvicorn.Config(
            api,
            host=host,
            port=port,
            log_config=None,  # structlog (configured by the CLI) owns the output
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            server_header=False,
        ),
        on_started,
    )
    await app.start()
    tasks: list[asyncio.Task[None]] = []

    def failed(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("component failed; stopping", component=task.get_name(), error=str(task.exception()))
            server.should_exit = True

    for name, component in app.components.items():
        run = getattr(component, "run", None)
        if run is not None:
            task = asyncio.create_task(run(stop), name=name)
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
                await asyncio.wait_for(task, timeout=10)
        await app.close()
