"""RPC failover on a real anvil: the pause lands when the first ``chain.rpc`` endpoint is down or throttled.

The responder is built from the configuration (``build_responder``), so these tests also check that it
uses every ``chain.rpc`` endpoint in order. The broken endpoints are real HTTP servers (aiohttp) or a
closed port; the second endpoint is anvil itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
import structlog
from aiohttp import web
from respond_support import PAUSE_ONLY, Harness, Venue, finding, write_config

from breakglass.bus import InProcessBus, Topics
from breakglass.chain.rpc import RpcClient
from breakglass.config import load_config
from breakglass.logs import Redactor, configure_logging
from breakglass.respond import ActionStep

pytestmark = pytest.mark.node

API_KEY = "k3yOfTheProviderAbCdEf0123456789"
"""Stands for the API key a provider URL carries: it must not reach a log line, the ledger or the bus."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Endpoint:
    """A tiny HTTP server on 127.0.0.1 standing for a broken RPC provider; counts the requests it got."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body["method"] if isinstance(body, dict) else "batch")
        return await self.handler(request)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v3/{API_KEY}?apikey={API_KEY}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def endpoints() -> AsyncIterator[Callable[[Handler], Awaitable[Endpoint]]]:
    started: list[Endpoint] = []

    async def start(handler: Handler) -> Endpoint:
        endpoint = Endpoint(handler)
        started.append(endpoint)
        await endpoint.start()
        return endpoint

    yield start
    for endpoint in started:
        await endpoint.stop()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v3/{API_KEY}"  # nothing listens there any more: connection refused


def harness_over(venue: Venue, urls: list[str], timeout: float = 10.0) -> Harness:
    """A harness whose configuration lists ``urls`` as ``chain.rpc`` (in that order)."""
    path = write_config(venue.manifest.parent, PAUSE_ONLY)
    text = path.read_text(encoding="utf-8")
    rpc = ", ".join(json.dumps(u) for u in urls)
    chain = f"chain: {{poll_interval: 0.05, request_timeout: {timeout}, rpc: [{rpc}]}}"
    path.write_text(text.replace("chain: {poll_interval: 0.05}", chain), encoding="utf-8")
    config = load_config(path)
    assert config.rpc_urls() == urls
    return Harness(config, venue, InProcessBus(), Redactor(config.secrets), [])


async def answer_503(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=503, text="upstream unavailable")


async def answer_429(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=429, text="too many requests")


async def answer_rate_limited(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    error = {"code": -32005, "message": "daily request count exceeded, request rate limited"}
    return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})


@pytest.mark.parametrize(
    "broken",
    ["closed-port", "http-503", "http-429", "json-rpc-rate-limit"],
)
async def test_the_pause_lands_through_the_second_endpoint_when_the_first_is_down_or_throttled(
    venue: Venue, endpoints: Callable[[Handler], Awaitable[Endpoint]], broken: str
) -> None:
    served: Endpoint | None = None
    if broken == "closed-port":
        first = closed_port_url()
    else:
        handler = {"http-503": answer_503, "http-429": answer_429, "json-rpc-rate-limit": answer_rate_limited}
        served = await endpoints(handler[broken])
        first = served.url
    harness = harness_over(venue, [first, venue.node.url])
    stream = io.StringIO()
    configure_logging(json=True, level="debug", redactor=harness.redactor, stream=stream)
    actions = harness.bus.subscribe(Topics.ACTIONS, "test")
    try:
        responder = await harness.responder()
        assert isinstance(responder.rpc, RpcClient)
        [sent] = await responder.handle(finding())
        assert sent.step is ActionStep.SUBMITTED and "broadcast_error" not in sent.detail
        done = await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
        details = [r.detail for r in await responder.ledger.rows()]
    finally:
        await harness.close()
    assert done.step is ActionStep.CONFIRMED and done.tx_hash == sent.tx_hash
    assert venue.view("paused") and venue.guardian_nonce() == 1
    if served is not None:  # tried once (the first call), then the endpoint that answered is preferred
        assert len(served.requests) == 1, served.requests
    # the endpoint's key is in no log line, ledger row or published event
    published = [await anext(actions) for _ in range(2)]
    text = stream.getvalue() + repr(published) + repr(details)
    assert "rpc endpoint" in stream.getvalue()  # the failover was logged...
    assert API_KEY not in text  # ...without the key
    assert API_KEY.encode() not in (venue.manifest.parent / "bg.db").read_bytes()


async def test_a_send_that_reached_the_node_before_its_endpoint_failed_is_not_a_failure_on_the_next(
    venue: Venue, endpoints: Callable[[Handler], Awaitable[Endpoint]]
) -> None:
    """The first endpoint forwards eth_sendRawTransaction to the node, then answers 503 (its answer is lost).

    The client fails over and sends the same bytes to the node directly, which answers that the nonce is
    used ("nonce too low": automine mined it already): that is the transaction being in, not a refusal.
    """
    async with aiohttp.ClientSession() as upstream:

        async def forward_then_fail(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            async with upstream.post(venue.node.url, json=body) as answer:
                payload = await answer.read()
            if isinstance(body, dict) and body.get("method") == "eth_sendRawTransaction":
                return web.Response(status=503)
            return web.Response(body=payload, content_type="application/json")

        proxy = await endpoints(forward_then_fail)
        harness = harness_over(venue, [proxy.url, venue.node.url])
        try:
            responder = await harness.responder()
            [sent] = await responder.handle(finding())
            done = await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
            steps = [r.step for r in await responder.ledger.rows()]
        finally:
            await harness.close()
    assert "eth_sendRawTransaction" in proxy.requests
    assert sent.step is ActionStep.SUBMITTED and "broadcast_error" not in sent.detail
    assert done.step is ActionStep.CONFIRMED and done.tx_hash == sent.tx_hash
    assert steps == ["intent", "signed", "submitted", "confirmed"]
    assert venue.guardian_nonce() == 1


async def test_a_send_every_endpoint_refused_keeps_its_signed_bytes_and_the_poll_sends_them_again(
    venue: Venue, endpoints: Callable[[Handler], Awaitable[Endpoint]]
) -> None:
    """Both endpoints answer 503 to the first eth_sendRawTransaction (reads go through), then recover."""
    refusals = {"left": 2 * 3}  # every endpoint, every round of the first send
    async with aiohttp.ClientSession() as upstream:

        async def refusing_sends(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            if body.get("method") == "eth_sendRawTransaction" and refusals["left"]:
                refusals["left"] -= 1
                return web.Response(status=503)
            async with upstream.post(venue.node.url, json=body) as answer:
                return web.Response(body=await answer.read(), content_type="application/json")

        first, second = await endpoints(refusing_sends), await endpoints(refusing_sends)
        harness = harness_over(venue, [first.url, second.url])
        try:
            responder = await harness.responder()
            [sent] = await responder.handle(finding())
            assert not venue.view("paused")
            done = await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
        finally:
            await harness.close()
    error = str(sent.detail["broadcast_error"])
    assert sent.step is ActionStep.SUBMITTED and "HTTP 503" in error and API_KEY not in error
    assert (
        first.requests.count("eth_sendRawTransaction") >= 3
        and second.requests.count("eth_sendRawTransaction") >= 3
    )
    assert done.step is ActionStep.CONFIRMED and done.tx_hash == sent.tx_hash  # the same bytes, not re-signed
    assert done.detail["replacements"] == 0 and venue.view("paused") and venue.guardian_nonce() == 1


async def test_a_first_endpoint_that_never_answers_costs_one_request_timeout_then_the_pause_lands(
    venue: Venue, endpoints: Callable[[Handler], Awaitable[Endpoint]]
) -> None:
    """A black hole (accepts, never answers): the first call waits ``chain.request_timeout``, once."""
    released = asyncio.Event()

    async def hang(_request: web.Request) -> web.StreamResponse:
        await released.wait()
        return web.Response(status=504)

    hole = await endpoints(hang)
    harness = harness_over(venue, [hole.url, venue.node.url], timeout=0.5)
    try:
        started = time.perf_counter()
        responder = await harness.responder()
        ready_s = time.perf_counter() - started
        [sent] = await responder.handle(finding())
        done = await responder.relayer.wait(sent.key)  # type: ignore[union-attr]
    finally:
        released.set()
        await harness.close()
    assert 0.5 <= ready_s < 5 and len(hole.requests) == 1
    assert sent.detail["total_ms"] < 500  # the send itself went straight to the endpoint that answered
    assert done.step is ActionStep.CONFIRMED and venue.view("paused")
