"""A JSON-RPC forwarder between breakglass and the node, served by uvicorn on a thread on a free loopback
port: the base of the fault soak's ``KillingProxy`` and the responder failover's ``SendProxy``, which
look at each request (a guardian transaction about to leave) before they ``forward`` it, or not."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator
from typing import Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


class RpcProxy:
    """Serves ``routes`` once started (``url``); ``forward`` sends a request's body on to ``upstream``."""

    def __init__(self, upstream: str, routes: list[Route]) -> None:
        self.upstream = upstream
        self._client = httpx.AsyncClient(timeout=30)

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            yield
            await self._client.aclose()  # on the server's loop, where its connections live

        app = Starlette(routes=routes, lifespan=lifespan)
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = ""

    def start(self) -> Self:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def forward(self, body: bytes) -> Response:
        """The node's answer to ``body``."""
        answer = await self._client.post(
            self.upstream, content=body, headers={"content-type": "application/json"}
        )
        return Response(answer.content, status_code=answer.status_code, media_type="application/json")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
