"""Signed webhooks: the event as JSON, POSTed with an HMAC-SHA256 signature a receiver can verify.

Headers: ``X-Breakglass-Timestamp: <unix seconds>`` and ``X-Breakglass-Signature: v1=<hex>`` where
``<hex> = HMAC-SHA256(secret, "<timestamp>." + body)``. A receiver recomputes it over the raw body,
compares in constant time, and rejects timestamps older than a few minutes (replays). ``verify``
below is the reference implementation (docs/incidents.md shows it standalone).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import httpx

from breakglass.errors import NotifyError
from breakglass.logs import redact_url

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookChannel", "sign", "verify", "where"]

TIMESTAMP_HEADER = "X-Breakglass-Timestamp"
SIGNATURE_HEADER = "X-Breakglass-Signature"


def where(url: str) -> str:
    """Scheme and host of a channel URL, and nothing else: paths and queries hold tokens."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split("?", 1)[0]
    return redact_url(f"{scheme}://{host}/…")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """True when ``body`` was signed with ``secret`` within ``tolerance`` seconds of ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered[TIMESTAMP_HEADER.lower()])
        signature = lowered[SIGNATURE_HEADER.lower()]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel:
    def __init__(self, name: str, url: str, secret: str | None = None, *, timeout: float = 10.0) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None  # one per channel: TLS setup costs ~0.3 s

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r}, {where(self._url)!r})"

    async def send(self, title: str, body: str, payload: Mapping[str, Any]) -> None:
        document = {**payload, "title": title, "text": body}
        raw = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "breakglass"}
        if self._secret:
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, raw)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._client.post(self._url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            # The exception text may hold the URL (and its token): name the channel only.
            raise NotifyError(f"webhook {self.name!r}: {type(exc).__name__}", recoverable=True) from None
        if response.status_code >= 300:
            retry = response.status_code >= 500 or response.status_code in (408, 429)
            raise NotifyError(f"webhook {self.name!r}: HTTP {response.status_code}", recoverable=retry)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
