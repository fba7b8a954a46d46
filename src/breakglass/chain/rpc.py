"""Async JSON-RPC: batched requests over HTTP to several endpoints with failover, backoff and timeouts.

A thin layer over HTTP POSTs (``chain.http``) rather than web3.py's provider stack: the follower's hot
path is "one HTTP request carrying a batch", and the benchmark (``benchmarks/detection.py``) compares it
against a plain web3.py loop doing the same work. Not httpx nor aiohttp: a batch of 25 blocks with
receipts cost ~1.6 ms of CPU through httpx, ~0.7 ms through aiohttp and ~0.35 ms through ``chain.http``
(measured on anvil), and a backfill is CPU-bound in this process. Raw answers leave this module as
plain JSON; ``chain.decode`` turns them into domain types.

Transient failures (connection errors, timeouts, HTTP 5xx/429, JSON-RPC rate-limit codes) and an
endpoint refusing us (HTTP 401/403 and kin, an answer that is not JSON-RPC) move on to the next
endpoint, and after a full round of endpoints wait with exponential backoff, up to ``max_rounds``. A
JSON-RPC error object from a healthy node is not transient: it is raised (or, in a batch with
``strict=False``, returned in place of the result) as ``RpcError``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from breakglass.chain.http import HttpPool
from breakglass.errors import RpcError
from breakglass.logs import get_logger, redact_url
from breakglass.metrics import (
    RPC_ERRORS,
    RPC_EXHAUSTED,
    RPC_FAILOVERS,
    RPC_REQUESTS,
    RPC_SECONDS,
    endpoint_label,
)

__all__ = ["Call", "HttpTransport", "RpcClient", "Transport", "TransportError"]

log = get_logger(__name__)

Call = tuple[str, Sequence[Any]]
"""One JSON-RPC call: method and positional params."""

# Codes nodes and providers use for "slow down" or "try another node"; retried like a transport error.
_TRANSIENT_CODES = frozenset({-32005, 429})
# HTTP statuses that say "not this endpoint" (a revoked or unpaid API key, a wrong path), not "not this
# request": the next endpoint may well answer. 400 is not among them: providers send JSON-RPC errors
# for bad params with it.
_ENDPOINT_REFUSED = frozenset({401, 402, 403, 404, 405, 407, 410})
_TRANSIENT_WORDS = ("rate limit", "too many requests", "header not found", "timeout")


class TransportError(Exception):
    """The endpoint could not be reached or answered garbage; another endpoint may do better."""


class Transport(Protocol):
    """Sends one JSON-RPC payload (a list of request objects) and returns the decoded answers."""

    @property
    def name(self) -> str: ...

    async def send(self, payload: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class HttpTransport:
    """JSON-RPC over HTTP(S) with keep-alive connections (``chain.http``)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._pool = HttpPool(url, timeout=timeout, limit=32)
        self.name = redact_url(url)
        self.label = endpoint_label(url)
        """What metrics may say of this endpoint: scheme, host and port."""

    async def send(self, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        status, content = await self._post(payload)
        try:
            answer = _loads(content)
        except ValueError as exc:
            raise TransportError(f"HTTP {status}: not JSON") from exc
        if isinstance(answer, dict):
            answer = [answer]
        if not isinstance(answer, list):
            raise TransportError(f"HTTP {status}: unexpected JSON {type(answer).__name__}")
        if answer and not (type(answer[0]) is dict and "id" in answer[0]):
            # e.g. a gateway's {"message": "Unauthorized"}: whatever answered, it was not a node
            raise TransportError(f"HTTP {status}: not a JSON-RPC answer")
        return answer

    async def send_raw(self, payload: list[dict[str, Any]]) -> bytes:
        """The answer's body as the node sent it, not decoded (``RpcClient.batch_raw``)."""
        return (await self._post(payload))[1]

    async def _post(self, payload: list[dict[str, Any]]) -> tuple[int, bytes]:
        body = payload[0] if len(payload) == 1 else payload
        try:
            status, content = await self._pool.post(_dumps(body))
        except (OSError, TimeoutError) as exc:  # HttpError is an OSError
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if status == 429 or status >= 500 or status in _ENDPOINT_REFUSED:
            raise TransportError(f"HTTP {status}")
        return status, content

    async def close(self) -> None:
        await self._pool.close()


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


def _dumps(body: Any) -> bytes:
    return _ENCODER.encode(body)


def _loads(content: bytes) -> Any:
    """msgspec: half the CPU of ``json`` on a batch of blocks, and integers of any size stay exact
    (orjson turns those beyond 64 bits into floats). The stdlib takes what msgspec refuses (a number
    beyond a double's range), so nothing a node may send becomes an error here that was not one."""
    try:
        return _DECODER.decode(content)
    except msgspec.DecodeError:
        return json.loads(content)


def _is_transient(error: dict[str, Any]) -> bool:
    code = error.get("code")
    message = str(error.get("message", "")).lower()
    return code in _TRANSIENT_CODES or any(word in message for word in _TRANSIENT_WORDS)


class _EndpointMetrics:
    """One endpoint's metric children, looked up once (``labels()`` costs more than ``inc()``)."""

    __slots__ = ("failovers", "requests", "seconds", "throttled", "transport_errors")

    def __init__(self, label: str) -> None:
        self.requests = RPC_REQUESTS.labels(label)
        self.seconds = RPC_SECONDS.labels(label)
        self.transport_errors = RPC_ERRORS.labels(label, "transport")
        self.throttled = RPC_ERRORS.labels(label, "throttled")
        self.failovers = RPC_FAILOVERS.labels(label)


class RpcClient:
    """Several endpoints of one chain, tried in order; the last one that worked is tried first."""

    def __init__(
        self,
        transports: Sequence[Transport],
        *,
        max_rounds: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_batch: int = 500,
    ) -> None:
        if not transports:
            raise ValueError("RpcClient needs at least one transport")
        self._transports = list(transports)
        self._preferred = 0
        self._ids = itertools.count(1)
        self._max_rounds = max_rounds
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_batch = max_batch
        self.requests = 0
        """HTTP requests sent (round trips), for benchmarks and tests."""
        self._metrics = [_EndpointMetrics(getattr(t, "label", t.name)) for t in self._transports]

    @classmethod
    def from_urls(cls, urls: Sequence[str], *, timeout: float = 10.0, **kwargs: Any) -> RpcClient:
        return cls([HttpTransport(url, timeout=timeout) for url in urls], **kwargs)

    @property
    def endpoint(self) -> str:
        return self._transports[self._preferred].name

    async def call(self, method: str, *params: Any) -> Any:
        (result,) = await self.batch([(method, params)])
        return result

    async def batch(self, calls: Sequence[Call], *, strict: bool = True) -> list[Any]:
        """Results in call order, in as few round trips as ``max_batch`` allows.

        ``strict=False`` returns an ``RpcError`` in place of each failed call instead of raising.
        """
        if not calls:
            return []
        if len(calls) <= self._max_batch:
            return await self._batch_once(calls, strict)
        chunks = [calls[i : i + self._max_batch] for i in range(0, len(calls), self._max_batch)]
        parts = await asyncio.gather(*(self._batch_once(c, strict) for c in chunks))
        return [r for part in parts for r in part]

    async def batch_raw(self, calls: Sequence[Call]) -> tuple[int, bytes] | None:
        """One round trip whose answer is left undecoded: (the first call's id, the body). The ids
        run on from it in call order. Whoever decodes the body checks it (errors, ids, shape) and
        asks again through ``batch`` when it is not the usual answer: only the transport's failures
        are handled here. None when no transport can hand over a raw body, or the calls do not fit
        one batch. A backfill sends its windows' bodies to the detection worker this way
        (``detect/offload.py``): this process never parses them."""
        if not calls or len(calls) > self._max_batch:
            return None
        if not all(hasattr(t, "send_raw") for t in self._transports):
            return None
        first_id, payload = self._payload(calls)
        body: bytes = await self._send(payload, calls[0][0], raw=True)
        return first_id, body

    def _payload(self, calls: Sequence[Call]) -> tuple[int, list[dict[str, Any]]]:
        first_id = next(self._ids)
        # ids are unique per client; a batch reserves a contiguous block so answers map back by id
        self._ids = itertools.count(first_id + len(calls))
        payload = [
            {"jsonrpc": "2.0", "id": first_id + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        return first_id, payload

    async def _batch_once(self, calls: Sequence[Call], strict: bool) -> list[Any]:
        first_id, payload = self._payload(calls)
        answers = await self._send(payload, calls[0][0])
        in_order = len(answers) == len(calls) and all(
            type(a) is dict and a.get("id") == first_id + i and "error" not in a
            for i, a in enumerate(answers)
        )
        if in_order:
            return [a.get("result") for a in answers]  # the usual answer: in order, no error
        by_id: dict[Any, dict[str, Any]] = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results: list[Any] = []
        for i, (method, _params) in enumerate(calls):
            answer = by_id.get(first_id + i)
            if answer is None:
                error: Any = RpcError(method, "no answer for this call in the batch", endpoint=self.endpoint)
            elif "error" in answer and answer["error"] is not None:
                err: dict[str, Any] = answer["error"] if isinstance(answer["error"], dict) else {}
                code = err.get("code")
                error = RpcError(
                    method,
                    str(err.get("message", answer["error"])),
                    code=code if isinstance(code, int) else None,
                    data=err.get("data"),
                    endpoint=self.endpoint,
                    recoverable=False,
                )
            else:
                results.append(answer.get("result"))
                continue
            if strict:
                raise error
            results.append(error)
        return results

    async def _send(self, payload: list[dict[str, Any]], method: str, *, raw: bool = False) -> Any:
        """The decoded answers (a list), or with ``raw`` the undecoded body (bytes)."""
        delay = self._backoff
        last = "no endpoint tried"
        for round_ in range(self._max_rounds):
            for step in range(len(self._transports)):
                index = (self._preferred + step) % len(self._transports)
                transport = self._transports[index]
                metrics = self._metrics[index]
                started = time.perf_counter()
                try:
                    self.requests += 1
                    metrics.requests.inc()
                    if raw:
                        body = await transport.send_raw(payload)  # type: ignore[attr-defined]
                    else:
                        answers = await transport.send(payload)
                except TransportError as exc:
                    metrics.seconds.observe(time.perf_counter() - started)
                    metrics.transport_errors.inc()
                    last = f"{transport.name}: {exc}"
                    log.warning("rpc endpoint failed", endpoint=transport.name, method=method, error=str(exc))
                    continue
                metrics.seconds.observe(time.perf_counter() - started)
                if not raw:  # a raw body is checked by whoever decodes it
                    errors = [
                        a["error"]
                        for a in answers
                        if isinstance(a, dict) and isinstance(a.get("error"), dict)
                    ]
                    if errors and all(_is_transient(e) for e in errors) and len(errors) == len(answers):
                        metrics.throttled.inc()
                        last = f"{transport.name}: {errors[0].get('message')}"
                        log.warning("rpc endpoint throttled", endpoint=transport.name, method=method)
                        continue
                if index != self._preferred:
                    log.info("rpc failover", endpoint=transport.name)
                    metrics.failovers.inc()
                    self._preferred = index
                return body if raw else answers
            if round_ + 1 < self._max_rounds:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
        RPC_EXHAUSTED.inc()
        raise RpcError(
            method,
            f"every endpoint failed after {self._max_rounds} rounds; last: {last}",
            endpoint=self.endpoint,
            recoverable=True,
        )

    async def close(self) -> None:
        for transport in self._transports:
            await transport.close()
