"""Hermetic fakes for the I/O boundaries, shipped with the package so plugins can test against them.

Each fake implements one small Protocol of the library (RPC transport, ...) with no network and no
clock; tests of pure logic use these, tests of I/O use the real thing (anvil).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from breakglass.chain.checkpoint import Checkpoint
from breakglass.chain.rpc import TransportError
from breakglass.domain import Block

__all__ = ["FakeTransport", "RecordingHandler", "wait_until"]

Handler = Callable[[str, list[Any]], Any]


class FakeTransport:
    """A JSON-RPC endpoint in memory: ``handler(method, params)`` returns a result or raises.

    Raise ``TransportError`` from the handler to play an unreachable node; return
    ``FakeTransport.error(code, message)`` to answer with a JSON-RPC error object. ``sent`` keeps every
    payload for assertions on batching.
    """

    def __init__(self, handler: Handler, *, name: str = "fake") -> None:
        self._handler = handler
        self.name = name
        self.sent: list[list[dict[str, Any]]] = []
        self.down = False

    @staticmethod
    def error(code: int, message: str) -> dict[str, Any]:
        return {"__error__": {"code": code, "message": message}}

    async def send(self, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent.append(payload)
        if self.down:
            raise TransportError(f"{self.name} is down")
        answers = []
        for request in payload:
            result = self._handler(request["method"], list(request["params"]))
            if isinstance(result, dict) and "__error__" in result:
                answers.append({"jsonrpc": "2.0", "id": request["id"], "error": result["__error__"]})
            else:
                answers.append({"jsonrpc": "2.0", "id": request["id"], "result": result})
        return answers

    async def close(self) -> None:
        return None


class RecordingHandler:
    """A follower block handler that remembers every block and every orphaned checkpoint."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.orphaned: list[Checkpoint] = []

    async def on_block(self, block: Block) -> int:
        self.blocks.append(block)
        return 0

    async def on_reorg(self, orphaned: Sequence[Checkpoint]) -> None:
        self.orphaned.extend(orphaned)

    @property
    def numbers(self) -> list[int]:
        return [b.number for b in self.blocks]


async def wait_until(condition: Callable[[], bool], within: float = 30.0, what: str = "condition") -> None:
    """Wait for a condition, not for a time: polls it, raises ``TimeoutError`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached within {within:g} s")
        await asyncio.sleep(0.01)
