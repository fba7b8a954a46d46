"""The mempool watcher: pending transactions with full bodies, as soon as the node has them.

A WebSocket ``eth_subscribe("newPendingTransactions", true)`` delivers each transaction's body with no
extra round trip; when no WebSocket endpoint is configured, or it drops, ``txpool_content`` is polled
instead until the subscription is back. Each transaction is handed over once (a bounded memory of
seen hashes), decoded into ``PendingTx`` with the time it was first seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import websockets

from breakglass.chain.decode import RawTx, decode_tx
from breakglass.chain.rpc import RpcClient
from breakglass.domain import PendingTx
from breakglass.errors import ChainDataError, ChainError, RpcError
from breakglass.logs import get_logger, redact_url
from breakglass.metrics import MEMPOOL_LAST_SEEN, MEMPOOL_SEEN, MEMPOOL_SUBSCRIBED

__all__ = ["MempoolWatcher", "PendingHandler"]

log = get_logger(__name__)

PendingHandler = Callable[[PendingTx], Awaitable[None]]


class _Seen:
    """The last ``size`` transaction hashes, so a tx seen by both paths is handled once."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._hashes: OrderedDict[str, None] = OrderedDict()

    def first_time(self, tx_hash: str) -> bool:
        if tx_hash in self._hashes:
            return False
        self._hashes[tx_hash] = None
        if len(self._hashes) > self._size:
            self._hashes.popitem(last=False)
        return True


class MempoolWatcher:
    """Feeds every new pending transaction to ``handler``. ``run()`` until cancelled."""

    def __init__(
        self,
        rpc: RpcClient,
        handler: PendingHandler,
        *,
        ws_url: str | None = None,
        poll_interval: float = 0.1,
        remember: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rpc = rpc
        self._handler = handler
        self._ws_url = ws_url
        self._poll_interval = poll_interval
        self._seen = _Seen(remember)
        self._clock = clock
        self.subscribed = asyncio.Event()
        """Set while the WebSocket subscription is live (tests and the drill runner wait on it)."""
        self.received = 0
        self.malformed = 0

    async def run(self) -> None:
        MEMPOOL_LAST_SEEN.set(time.time())  # a feed that never delivers anything is silent from here
        while True:
            if self._ws_url:
                try:
                    await self._subscribe(self._ws_url)
                except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                    self.subscribed.clear()
                    MEMPOOL_SUBSCRIBED.set(0)
                    endpoint = redact_url(self._ws_url)
                    log.warning("pending subscription lost; polling", endpoint=endpoint, error=str(exc))
            # Poll until the subscription can be tried again (or forever without a WebSocket URL).
            deadline = self._clock() + 5.0
            while not self._ws_url or self._clock() < deadline:
                try:
                    await self.poll_once()
                except ChainError as exc:  # the node is away: keep trying, never end the watch
                    log.warning("pending transactions unreadable", error=str(exc))
                await asyncio.sleep(self._poll_interval)

    async def _subscribe(self, url: str) -> None:
        async with websockets.connect(url, max_size=2**24, ping_interval=20) as ws:
            params = ["newPendingTransactions", True]
            request = {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": params}
            await ws.send(json.dumps(request))
            async with asyncio.timeout(10):  # not wait_for: on 3.11 it can drop the watch's cancel
                answer = json.loads(await ws.recv())
            if "error" in answer:
                raise OSError(f"eth_subscribe refused: {answer['error']}")
            self.subscribed.set()
            MEMPOOL_SUBSCRIBED.set(1)
            # Anything that arrived in the pool before the subscription started: pick it up once.
            await self.poll_once()
            async for message in ws:
                body = json.loads(message)
                result = body.get("params", {}).get("result")
                if isinstance(result, dict):
                    await self._accept(result, "eth_subscription")
                elif isinstance(result, str):  # a node that sends hashes only: fetch the body
                    with contextlib.suppress(RpcError):
                        raw = await self._rpc.call("eth_getTransactionByHash", result)
                        if raw is not None:
                            await self._accept(raw, "eth_getTransactionByHash")

    async def poll_once(self) -> int:
        """Hand over every pending transaction not seen before; returns how many were new."""
        content = await self._rpc.call("txpool_content")
        new = 0
        for section in ("pending", "queued"):
            for by_nonce in (content or {}).get(section, {}).values():
                for raw in by_nonce.values():
                    new += await self._accept(raw, "txpool_content")
        return new

    async def _accept(self, raw: dict[str, Any], method: str) -> int:
        seen_at = self._clock() * 1000.0
        tx_hash = raw.get("hash")
        if not isinstance(tx_hash, str) or not self._seen.first_time(tx_hash.lower()):
            return 0
        try:
            tx = decode_tx(RawTx(**raw), None, method, "pending.")  # type: ignore[typeddict-item]
        except ChainDataError as exc:
            self.malformed += 1
            log.warning("undecodable pending transaction", error=str(exc))
            return 0
        self.received += 1
        MEMPOOL_SEEN.inc()
        MEMPOOL_LAST_SEEN.set(time.time())
        await self._handler(PendingTx(tx=tx, seen_at_ms=seen_at))
        return 1
