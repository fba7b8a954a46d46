"""The guardian key in another process: a signer spoken to over JSON-RPC (Web3Signer, Clef, a node's
personal accounts), so that breakglass never holds the key.

``eth_signTransaction`` with the EIP-1559 transaction (hex quantities, ``from`` = the guardian);
the answer is the signed transaction's bytes (Web3Signer: a hex string; geth and Clef: ``{"raw": ...}``).
The bytes are decoded and checked (``signer.checked``): signed by the configured address, and every
field the one asked. The URL is a secret (it may carry a token): errors name it by ``redact_url``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import httpx

from breakglass.errors import ResponseError
from breakglass.logs import redact_url
from breakglass.respond.signer import SignedTx, checked

__all__ = ["RemoteSigner"]


def _quantity(value: int) -> str:
    return hex(int(value))


class RemoteSigner:
    """Signs through ``url``'s ``eth_signTransaction``; ``accounts()`` lists what the signer holds."""

    def __init__(self, url: str, address: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self._address = address
        self._timeout = timeout
        self._ids = itertools.count(1)
        self.name = f"remote signer {redact_url(url)}"

    @property
    def address(self) -> str:
        return self._address

    async def _call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise ResponseError(f"{self.name}: {type(exc).__name__}", recoverable=True) from None
        if response.status_code != 200:
            raise ResponseError(
                f"{self.name}: HTTP {response.status_code}", recoverable=response.status_code >= 500
            )
        try:
            answer = response.json()
        except ValueError:
            raise ResponseError(f"{self.name}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise ResponseError(f"{self.name}: the answer is not a JSON-RPC object")
        if answer.get("error"):
            error = answer["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ResponseError(f"{self.name} refused {method}: {message}")
        return answer.get("result")

    async def accounts(self) -> list[str]:
        """``eth_accounts``: the addresses the signer holds (``breakglass doctor`` checks ours is one)."""
        result = await self._call("eth_accounts", [])
        return [str(a) for a in result] if isinstance(result, list) else []

    async def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        request = {
            "from": self._address,
            "to": tx["to"],
            "gas": _quantity(tx["gas"]),
            "maxFeePerGas": _quantity(tx["maxFeePerGas"]),
            "maxPriorityFeePerGas": _quantity(tx["maxPriorityFeePerGas"]),
            "value": _quantity(tx.get("value", 0)),
            "data": "0x" + bytes(tx.get("data", b"")).hex(),
            "nonce": _quantity(tx["nonce"]),
            "chainId": _quantity(tx["chainId"]),
            "type": "0x2",
        }
        result = await self._call("eth_signTransaction", [request])
        raw = result.get("raw") if isinstance(result, dict) else result
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise ResponseError(f"{self.name}: eth_signTransaction answered no signed transaction")
        try:
            data = bytes.fromhex(raw[2:])
        except ValueError:
            raise ResponseError(f"{self.name}: eth_signTransaction answered no hex") from None
        return checked(data, tx, self._address, self.name)

    def __repr__(self) -> str:
        return f"RemoteSigner({self._address})"
