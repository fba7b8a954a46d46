"""The audit's view of its node: plain synchronous JSON-RPC with batches, on one kept-alive connection.

The audit is an offline tool that runs thousands of small calls against a local fork (snapshot, send,
read balances, revert); a plain client keeps that simple. It never talks to the user's real node
except through anvil's ``--fork-url``.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from breakglass.errors import DevnetError

__all__ = ["Node", "RpcNode", "RpcRefusal"]


class RpcRefusal(Exception):
    """The node answered a JSON-RPC error (a revert, an unknown method): the message is its reason,
    ``data`` the revert's bytes when the node gave them (hex)."""

    def __init__(self, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.data = data


def _refusal(error: Any) -> RpcRefusal:
    if not isinstance(error, dict):
        return RpcRefusal(str(error))
    data = error.get("data")
    return RpcRefusal(str(error.get("message", error)), data if isinstance(data, str) else None)


class Node(Protocol):
    """What the audit needs of a node: single calls and batches."""

    def call(self, method: str, *params: Any) -> Any: ...

    def batch(self, calls: list[tuple[str, list[Any]]], *, strict: bool = True) -> list[Any]: ...


class RpcNode:
    """JSON-RPC over HTTP. ``call`` raises ``RpcRefusal`` for an error answer, ``DevnetError`` when the
    node cannot be reached."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)

    def _post(self, body: Any) -> Any:
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            raise DevnetError(f"the audit's node did not answer: {exc}") from exc

    def call(self, method: str, *params: Any) -> Any:
        body = self._post({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        if "error" in body:
            raise _refusal(body["error"])
        return body["result"]

    def batch(self, calls: list[tuple[str, list[Any]]], *, strict: bool = True) -> list[Any]:
        """Each call's result, in order; an error answer raises ``RpcRefusal`` (``strict``) or is None."""
        if not calls:
            return []
        answers = self._post(
            [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        )
        by_id = {a["id"]: a for a in answers}
        results: list[Any] = []
        for i in range(len(calls)):
            answer = by_id[i]
            if "error" in answer:
                if not strict:
                    results.append(None)
                    continue
                raise _refusal(answer["error"])
            results.append(answer["result"])
        return results

    def close(self) -> None:
        self._client.close()
