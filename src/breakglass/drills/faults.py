"""Faults a drill injects on request, to measure what each one costs the defense.

- ``node-restart``: after the first strike transaction the node is stopped and started again on the same
  port from its dumped state (``anvil_dumpState`` / ``anvil_loadState``); the follower, the mempool
  subscription and the responder have to reconnect.
- ``rpc-errors``: breakglass talks to the node through a proxy that answers a fraction of requests
  (``RPC_ERROR_FRACTION``) with HTTP 503, the way an overloaded provider does.
- ``slow-node``: the same proxy delays every answer by ``SLOW_NODE_DELAY`` seconds.
- ``reorg``: after the first strike transaction, the last ``REORG_DEPTH`` blocks are replaced by empty
  ones (``anvil_reorg``): whatever the defender had confirmed there is gone.
- ``guardian-no-gas``: the guardian account holds no ether, so its pause cannot be paid for.

The proxy only stands between breakglass and the node (its HTTP JSON-RPC); the attacker and the
WebSocket mempool subscription reach the node directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import socket
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.venue import Venue
from breakglass.errors import DevnetError

__all__ = ["FAULTS", "Fault", "make_fault"]

RPC_ERROR_FRACTION = 0.2
SLOW_NODE_DELAY = 0.25
REORG_DEPTH = 2


class Fault:
    """Hooks a drill calls; each fault overrides the ones it needs."""

    name = ""

    async def start_proxy(self, node_url: str) -> str | None:
        """The URL breakglass should use instead of the node's, or None."""
        return None

    async def stop_proxy(self) -> None:
        return None

    def before_defense(self, node: Anvil, venue: Venue) -> None:
        return None

    def after_strike_step(self, node: Anvil, venue: Venue, index: int) -> None:
        """Called in the player's thread after strike step ``index`` (1 for the first)."""
        return None


class _Proxy(Fault):
    """An HTTP JSON-RPC proxy in front of the node, served on the drill's event loop."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._rng = random.Random(7)  # noqa: S311 (a reproducible fault, not a secret)
        self.requests = 0
        self.failed = 0

    async def answer(self, body: bytes) -> Response:
        assert self._client is not None
        upstream = await self._client.post("/", content=body, headers={"content-type": "application/json"})
        return Response(upstream.content, status_code=upstream.status_code, media_type="application/json")

    async def _handle(self, request: Request) -> Response:
        self.requests += 1
        return await self.answer(await request.body())

    async def start_proxy(self, node_url: str) -> str | None:
        self._client = httpx.AsyncClient(base_url=node_url, timeout=30.0)
        app = Starlette(routes=[Route("/", self._handle, methods=["POST"])])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise DevnetError("the fault proxy did not start")
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    async def stop_proxy(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(10):
                    await self._task
        if self._client is not None:
            await self._client.aclose()


class RpcErrors(_Proxy):
    name = "rpc-errors"

    async def answer(self, body: bytes) -> Response:
        if self._rng.random() < RPC_ERROR_FRACTION:
            self.failed += 1
            return Response(b"service unavailable", status_code=503)
        return await super().answer(body)


class SlowNode(_Proxy):
    name = "slow-node"

    async def answer(self, body: bytes) -> Response:
        await asyncio.sleep(SLOW_NODE_DELAY)
        return await super().answer(body)


class GuardianNoGas(Fault):
    name = "guardian-no-gas"

    def before_defense(self, node: Anvil, venue: Venue) -> None:
        node.rpc("anvil_setBalance", venue.key("guardian").address, "0x0")


class Reorg(Fault):
    name = "reorg"

    def after_strike_step(self, node: Anvil, venue: Venue, index: int) -> None:
        if index == 1:
            time.sleep(1.0)  # the defender sees the strike (and may pause) on the branch that will vanish
            node.rpc("anvil_reorg", REORG_DEPTH, [])


class NodeRestart(Fault):
    name = "node-restart"

    def after_strike_step(self, node: Anvil, venue: Venue, index: int) -> None:
        if index != 1:
            return
        state = node.rpc("anvil_dumpState")
        port = node.port
        node.stop()
        node.options = dataclasses.replace(node.options, port=port or 0)
        node.start()
        node.rpc("anvil_loadState", state)


FAULTS: dict[str, type[Fault]] = {f.name: f for f in (NodeRestart, RpcErrors, Reorg, GuardianNoGas, SlowNode)}


def make_fault(name: str | None) -> Fault | None:
    if not name:
        return None
    if name not in FAULTS:
        raise DevnetError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    return FAULTS[name]()


def describe(fault: Any) -> str:
    return getattr(fault, "name", "") or "none"
