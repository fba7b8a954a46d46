"""Concurrent judgements share JSON-RPC batches; each caller gets its own answers or the failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from breakglass.chain.rpc import RpcClient, TransportError
from breakglass.errors import RpcError
from breakglass.simulate.batch import RpcBatcher
from breakglass.testing import FakeTransport


def echo(method: str, params: list[Any]) -> Any:
    return f"{method}:{params[0]}"


async def test_concurrent_callers_share_a_round_trip_and_get_their_own_answers() -> None:
    transport = FakeTransport(echo)
    batcher = RpcBatcher(RpcClient([transport]), senders=1)
    groups = [[("a", (i,)), ("b", (i,))] for i in range(20)]
    answers = await asyncio.gather(*(batcher.batch(g) for g in groups))
    assert answers == [[f"a:{i}", f"b:{i}"] for i in range(20)]
    assert len(transport.sent) < 20 and batcher.round_trips == len(transport.sent)


async def test_a_batch_never_exceeds_its_size_but_a_larger_group_still_goes_out_whole() -> None:
    transport = FakeTransport(echo)
    batcher = RpcBatcher(RpcClient([transport]), max_calls=4, senders=1)
    big = [("x", (i,)) for i in range(6)]
    small = [[("y", (i,))] for i in range(8)]
    results = await asyncio.gather(batcher.batch(big), *(batcher.batch(g) for g in small))
    assert results[0] == [f"x:{i}" for i in range(6)]
    assert all(len(p) <= 4 for p in transport.sent[1:]) and len(transport.sent[0]) == 6


async def test_when_no_endpoint_answers_every_waiting_caller_gets_the_error() -> None:
    def down(method: str, params: list[Any]) -> Any:
        raise TransportError("unreachable")

    batcher = RpcBatcher(RpcClient([FakeTransport(down)], max_rounds=1))
    results = await asyncio.gather(
        batcher.batch([("a", (1,))]), batcher.batch([("b", (2,))]), return_exceptions=True
    )
    assert all(isinstance(r, RpcError) for r in results)
    with pytest.raises(RpcError):
        await batcher.batch([("c", (3,))])  # and the next caller is served (and fails) too: nothing hangs
