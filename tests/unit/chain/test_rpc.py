"""The JSON-RPC client: batching, failover, backoff and error mapping, against the hermetic fake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breakglass.chain.rpc import RpcClient, TransportError, _dumps, _loads
from breakglass.errors import RpcError
from breakglass.testing import FakeTransport


def echo(method: str, params: list[Any]) -> Any:
    return [method, *params]


async def test_a_batch_goes_out_as_one_request_and_answers_come_back_in_call_order() -> None:
    fake = FakeTransport(echo)
    rpc = RpcClient([fake])
    results = await rpc.batch([("a", (1,)), ("b", (2,)), ("c", ())])
    assert results == [["a", 1], ["b", 2], ["c"]]
    assert len(fake.sent) == 1 and len(fake.sent[0]) == 3


async def test_batches_larger_than_max_batch_are_split() -> None:
    fake = FakeTransport(echo)
    rpc = RpcClient([fake], max_batch=2)
    results = await rpc.batch([("m", (i,)) for i in range(5)])
    assert results == [["m", i] for i in range(5)]
    assert [len(p) for p in fake.sent] == [2, 2, 1]


async def test_an_unreachable_endpoint_fails_over_to_the_next_and_stays_there() -> None:
    down = FakeTransport(echo, name="first")
    down.down = True
    up = FakeTransport(echo, name="second")
    rpc = RpcClient([down, up], backoff=0)
    assert await rpc.call("x") == ["x"]
    assert await rpc.call("y") == ["y"]
    assert len(down.sent) == 1  # the second call went straight to the endpoint that worked
    assert rpc.endpoint == "second"


async def test_rate_limited_answers_are_retried_on_another_endpoint() -> None:
    limited = FakeTransport(lambda m, p: FakeTransport.error(-32005, "rate limit exceeded"), name="a")
    rpc = RpcClient([limited, FakeTransport(echo, name="b")], backoff=0)
    assert await rpc.call("eth_blockNumber") == ["eth_blockNumber"]


async def test_every_endpoint_down_raises_a_recoverable_rpc_error_after_the_rounds() -> None:
    fake = FakeTransport(echo)
    fake.down = True
    rpc = RpcClient([fake], max_rounds=3, backoff=0)
    with pytest.raises(RpcError) as info:
        await rpc.call("eth_blockNumber")
    assert info.value.recoverable and info.value.method == "eth_blockNumber"
    assert len(fake.sent) == 3


async def test_a_node_error_is_raised_with_its_code_and_not_retried() -> None:
    fake = FakeTransport(lambda m, p: FakeTransport.error(-32601, "method not found"))
    rpc = RpcClient([fake], backoff=0)
    with pytest.raises(RpcError) as info:
        await rpc.call("eth_getBlockReceipts", "0x1")
    assert info.value.code == -32601 and not info.value.recoverable
    assert len(fake.sent) == 1


async def test_non_strict_batches_return_errors_in_place() -> None:
    def handler(method: str, params: list[Any]) -> Any:
        return FakeTransport.error(3, "execution reverted") if params == [1] else params[0]

    rpc = RpcClient([FakeTransport(handler)])
    results = await rpc.batch([("eth_call", (0,)), ("eth_call", (1,)), ("eth_call", (2,))], strict=False)
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], RpcError) and results[1].code == 3


async def test_a_transport_error_from_the_handler_counts_as_an_outage() -> None:
    calls = 0

    def flaky(method: str, params: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransportError("connection reset")
        return "ok"

    rpc = RpcClient([FakeTransport(flaky)], backoff=0)
    assert await rpc.call("m") == "ok"


def test_the_json_codec_keeps_integers_beyond_64_bits_exact_both_ways() -> None:
    # a fast JSON codec may turn them into floats (orjson does); they must stay exact
    big = 2**70 + 1
    assert json.loads(_dumps({"params": [big]})) == {"params": [big]}
    assert _loads(b'{"result": 1180591620717411303425}') == {"result": big}
    assert _loads(b'[{"id": 1, "result": "0x1"}]') == [{"id": 1, "result": "0x1"}]
    assert _loads(b'{"result": 1e400}') == {"result": float("inf")}  # what msgspec refuses, json takes
    with pytest.raises(ValueError):
        _loads(b"<html>502 Bad Gateway</html>")
