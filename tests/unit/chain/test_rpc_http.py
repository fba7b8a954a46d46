"""The HTTP transport against real local HTTP servers: an endpoint that refuses us (revoked key, wrong
path, a gateway's non-JSON-RPC answer) is failed over like one that is down; a node's own JSON-RPC error
is not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError

Handler = Callable[[Any], web.Response]


def node(body: Any) -> web.Response:
    """A healthy node: echoes each request's method as its result."""
    requests = body if isinstance(body, list) else [body]
    answers = [{"jsonrpc": "2.0", "id": r["id"], "result": r["method"]} for r in requests]
    return web.json_response(answers if isinstance(body, list) else answers[0])


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        async def handle(request: web.Request) -> web.Response:
            return handler(await request.json())

        app = web.Application()
        app.router.add_post("/", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/"

    yield start
    for runner in runners:
        await runner.cleanup()


REFUSALS: dict[str, Handler] = {
    "401 with a JSON body": lambda _b: web.json_response({"message": "invalid API key"}, status=401),
    "402 quota exhausted": lambda _b: web.Response(status=402, text="upgrade your plan"),
    "403 forbidden page": lambda _b: web.Response(status=403, text="<html>forbidden</html>"),
    "404 wrong path": lambda _b: web.Response(status=404, text="not found"),
    "200 but not JSON-RPC": lambda _b: web.json_response({"error": "unauthorized"}),
}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_an_endpoint_that_refuses_us_is_failed_over_to_the_next(
    refusal: str, serve: Callable[[Handler], Awaitable[str]]
) -> None:
    refusing = await serve(REFUSALS[refusal])
    healthy = await serve(node)
    rpc = RpcClient.from_urls([refusing, healthy], backoff=0)
    assert await rpc.call("eth_blockNumber") == "eth_blockNumber"
    assert await rpc.batch([("eth_chainId", ()), ("net_version", ())]) == ["eth_chainId", "net_version"]
    assert rpc.endpoint == healthy  # and it stays there
    await rpc.close()


async def test_a_nodes_json_rpc_error_is_its_answer_not_a_reason_to_fail_over(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    def reverted(body: Any) -> web.Response:
        error = {"code": 3, "message": "execution reverted"}
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error}, status=400)

    first = await serve(reverted)
    second = await serve(node)
    rpc = RpcClient.from_urls([first, second], backoff=0)
    with pytest.raises(RpcError) as info:
        await rpc.call("eth_call", {"to": "0x" + "00" * 20}, "latest")
    assert info.value.code == 3 and "reverted" in str(info.value)
    assert rpc.endpoint == first
    await rpc.close()


async def test_a_raw_batch_hands_over_the_body_undecoded_and_fails_over_like_any_batch(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    down = await serve(lambda _b: web.Response(status=503, text="overloaded"))
    healthy = await serve(node)
    rpc = RpcClient.from_urls([down, healthy], backoff=0)
    await rpc.call("eth_chainId")  # ids go on from the calls before
    raw = await rpc.batch_raw([("eth_getBlockByNumber", ("0x1", True)), ("eth_getBlockReceipts", ("0x1",))])
    assert raw is not None
    first_id, body = raw
    answers = json.loads(body)
    assert [a["id"] for a in answers] == [first_id, first_id + 1] and first_id > 1
    assert [a["result"] for a in answers] == ["eth_getBlockByNumber", "eth_getBlockReceipts"]
    assert rpc.endpoint == healthy
    assert await rpc.batch_raw([]) is None
    await rpc.close()
