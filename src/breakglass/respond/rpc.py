"""The responder's view of the node: one ``call(method, *params)``, over a kept-alive HTTP connection.

The executors need only this; ``breakglass.chain.rpc.RpcClient`` (failover, batching) has the same
``call`` and can be passed instead. ``HttpRpc`` is the small default: one endpoint, no retries on the
hot path (a containment transaction is re-broadcast by the relayer's own loop, not by a blind retry).
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

import httpx

from breakglass.errors import RpcError

__all__ = ["HttpRpc", "Rpc"]


class Rpc(Protocol):
    async def call(self, method: str, *params: Any) -> Any: ...

    async def close(self) -> None: ...


class HttpRpc:
    """JSON-RPC over HTTP with one persistent connection; JSON-RPC errors raise ``RpcError``."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._client: httpx.AsyncClient | None = None

    async def call(self, method: str, *params: Any) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            response = await self._client.post(self._url, json=payload)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcError(method, f"transport: {type(exc).__name__}", recoverable=True) from exc
        if "error" in body:
            error = body["error"]
            raise RpcError(
                method,
                str(error.get("message")),
                code=error.get("code"),
                data=error.get("data"),
                recoverable=False,
            )
        return body.get("result")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
