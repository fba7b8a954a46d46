"""``/metrics``: Prometheus text with request counts labelled by route template, never by raw path."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role
from breakglass.app import build_app
from breakglass.bus import Topics
from breakglass.bus.jetstream import JetStreamBus
from breakglass.config import load_config
from breakglass.testing import make_finding, service_url

SECRET = "s" * 48


async def test_requests_are_counted_by_route_template_not_by_the_path_a_caller_chose(
    client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    assert (await client.get(f"/api/v1/incidents/{incident_id}", headers=headers)).status_code == 200
    assert (await client.get("/api/v1/incidents/inc-probe-123", headers=headers)).status_code == 404
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/api/v1/incidents/{incident_id}",status="200"' in text
    assert 'route="/api/v1/incidents/{incident_id}",status="404"' in text
    assert incident_id not in text and "inc-probe-123" not in text


async def test_the_jetstream_bus_reports_each_consumers_lag_in_metrics(
    tmp_path: Path, store_url: str, sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str]
) -> None:
    """breakglass_bus_consumer_lag_messages{topic, consumer} over a real JetStream: what each durable
    consumer has not handled yet (waiting on the server, or taken and not acknowledged), as the
    metrics refresher reads it from the server, served by /metrics."""
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    prefix, tag = f"bgtest_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:8]
    config = tmp_path / "breakglass.yaml"
    config.write_text(
        f"protocol: testvenue\nstore:\n  url: {store_url}\nbus:\n  kind: jetstream\n  url: {url}\n"
        f"  prefix: {prefix}\n",
        encoding="utf-8",
    )
    app = build_app(load_config(config))
    await app.start()
    bus = app.bus
    assert isinstance(bus, JetStreamBus)
    fast, slow = bus.subscribe(Topics.FINDINGS, f"fast-{tag}"), bus.subscribe(Topics.FINDINGS, f"slow-{tag}")
    api = create_api(app, session_secret=SECRET, sessions=sessions)
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    try:
        await bus.publish(Topics.FINDINGS, make_finding("m0"))
        for consumer in (fast, slow):  # a consumer is made on the server by its first pull
            await asyncio.wait_for(anext(consumer), 10)
        for n in range(1, 6):
            await bus.publish(Topics.FINDINGS, make_finding(f"m{n}"))
        for _ in range(5):  # fast handles 5 and holds the 6th; slow still holds its first
            await asyncio.wait_for(anext(fast), 10)
        want = {f"fast-{tag}": 1.0, f"slow-{tag}": 6.0}
        async with (
            api.router.lifespan_context(api),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as client,
        ):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10  # acknowledgements reach the server asynchronously
            while True:
                await app.components.metrics.refresh()
                response = await client.get("/metrics", headers=headers)
                assert response.status_code == 200
                got = _lag(response.text, tag)
                if got == want or loop.time() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert got == want
    finally:
        for consumer in (fast, slow):
            await consumer.aclose()  # type: ignore[attr-defined]
        await bus._context().delete_stream(prefix)
        await app.close()


def _lag(text: str, tag: str) -> dict[str, float]:
    """breakglass_bus_consumer_lag_messages of the findings topic, by consumer, for this test's consumers."""
    return {
        sample.labels["consumer"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "breakglass_bus_consumer_lag_messages"
        for sample in family.samples
        if sample.labels.get("topic") == Topics.FINDINGS and sample.labels["consumer"].endswith(tag)
    }
