"""The responder's view of the node: ``call(method, *params)`` over every configured endpoint.

``connect(urls)`` is what ``build_responder`` uses: ``breakglass.chain.rpc.RpcClient``, the chain
follower's client, so both stages share one notion of a transient failure (connection refused or reset,
timeout, HTTP 5xx/429, JSON-RPC rate-limit answers: try the next endpoint, then back off) and one
failover order (``chain.rpc``; the last endpoint that answered is tried first). Fewer rounds than the
follower's default: the relayer holds its nonce lock while it sends, and its own poll loop sends the
same signed bytes again at the next tick, so a long blind retry here would only delay other findings.

``send_verdict`` reads the node's answer to ``eth_sendRawTransaction``. Re-sending the same signed bytes
to another endpoint is safe (same hash), so after a failover, or a timeout whose request did arrive, the
node's "already known" or "nonce too low" means the transaction is in, not that it failed.

``HttpRpc`` is the former single-endpoint client (httpx, no retries), kept for callers that want exactly
one node (tests, a throwaway API process).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError

__all__ = ["RESPONDER_ROUNDS", "HttpRpc", "Rpc", "SendVerdict", "connect", "send_verdict"]

RESPONDER_ROUNDS = 3
"""Rounds over all endpoints per call (~0.3 s of backoff when every endpoint refuses fast)."""

# What clients answer when the very transaction (same hash), or one with its nonce, is already in the
# pool or mined: geth/op-geth/anvil "already known" / "nonce too low", older geth "known transaction",
# erigon "existing tx with same hash", openethereum "Transaction nonce is too low", nethermind
# "AlreadyKnown" / "OldNonce". "replacement transaction underpriced": an earlier version of ours (same
# nonce, lower or equal fees) is pending; the poll loop bumps it if it stays stuck.
_ALREADY_IN = (
    "already known",
    "alreadyknown",
    "already imported",
    "known transaction",
    "existing tx with same hash",
    "nonce too low",
    "nonce is too low",
    "oldnonce",
    "replacement transaction underpriced",
)


class Rpc(Protocol):
    async def call(self, method: str, *params: Any) -> Any: ...

    async def close(self) -> None: ...


class SendVerdict(enum.StrEnum):
    """What an ``eth_sendRawTransaction`` error means for the transaction sent."""

    IN = "in"
    """The node has it (or mined its nonce): track receipts, do not count it as a failed send."""
    REFUSED = "refused"
    """The node did not take it: keep the signed bytes and send them again at the next poll."""


def send_verdict(exc: RpcError) -> SendVerdict:
    """``IN`` for "already known"-style answers (any client's spelling), else ``REFUSED``.

    A transport failure (every endpoint down or throttled, ``recoverable``) is always ``REFUSED``: the
    node may or may not have the bytes, and sending them again is harmless.
    """
    text = str(exc).lower()
    if exc.data is not None:
        text += " " + str(exc.data).lower()
    if any(words in text for words in _ALREADY_IN):
        return SendVerdict.IN
    return SendVerdict.REFUSED


def connect(urls: Sequence[str], *, timeout: float = 10.0, backoff: float = 0.1) -> RpcClient:
    """The responder's client over ``urls`` (``chain.rpc``, in failover order)."""
    return RpcClient.from_urls(urls, timeout=timeout, max_rounds=RESPONDER_ROUNDS, backoff=backoff)


class HttpRpc:
    """JSON-RPC over HTTP to one endpoint, one persistent connection; JSON-RPC errors raise ``RpcError``."""

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
