"""Live events with several API processes on one JetStream bus: every replica's clients see every
event (fan-out, not a queue group), and no replica keeps or leaves a consumer on the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role
from breakglass.api.events import LIVE_TOPICS
from breakglass.app import App, build_app
from breakglass.bus import Topics
from breakglass.bus.jetstream import JetStreamBus
from breakglass.config import load_config
from breakglass.incidents.models import IncidentChange
from breakglass.testing import service_url, wait_until

SECRET = "s" * 48


@pytest.fixture
async def probe() -> AsyncIterator[JetStreamBus]:
    """A connection to a stream of this test's own, to look at its consumers; deleted afterwards."""
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    bus = await JetStreamBus(url, prefix=f"bgtest_{uuid.uuid4().hex[:10]}").connect()
    try:
        yield bus
    finally:
        await bus._context().delete_stream(bus._prefix)
        await bus.close()


async def _consumers(probe: JetStreamBus) -> int:
    return int((await probe._context().stream_info(probe._prefix)).state.consumer_count)


@contextlib.asynccontextmanager
async def replica(config: Path, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[tuple[App, str]]:
    """One API process: its own app, bus connection and hub, served by uvicorn on a free port."""
    app = build_app(load_config(config))
    await app.start()
    api: FastAPI = create_api(app, session_secret=SECRET, sessions=sessions)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    try:
        async with api.router.lifespan_context(api):
            task = asyncio.create_task(server.serve())
            await wait_until(lambda: server.started, within=10, what="uvicorn started")
            try:
                yield app, f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
                await task
    finally:
        await app.close()


async def _next_event(lines: AsyncIterator[str]) -> tuple[str, object]:
    event = None
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event is not None:
            return event, json.loads(line[len("data: ") :])
    raise AssertionError("the stream ended")


async def test_two_api_replicas_on_one_jetstream_bus_both_stream_every_event_and_leave_no_consumers(
    tmp_path: Path,
    store_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tokens: dict[Role, str],
    probe: JetStreamBus,
) -> None:
    config = tmp_path / "breakglass.yaml"
    config.write_text(
        f"protocol: testvenue\nstore:\n  url: {store_url}\n"
        f"bus:\n  kind: jetstream\n  url: {probe._url}\n  prefix: {probe._prefix}\n",
        encoding="utf-8",
    )
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    async with (
        replica(config, sessions) as (first, first_url),
        replica(config, sessions) as (second, second_url),
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", f"{first_url}/api/v1/events", headers=headers) as one,
        http.stream("GET", f"{second_url}/api/v1/events", headers=headers) as other,
    ):
        streams = [one.aiter_lines(), other.aiter_lines()]
        for lines in streams:
            assert await anext(lines) == "retry: 2000"

        buses: list[Any] = [first.bus, second.bus]

        def listening() -> bool:  # each hub holds a listener per topic, on its own connection
            return all(bus.listening(topic) == 1 for bus in buses for topic in LIVE_TOPICS)

        await wait_until(listening, within=10, what="both hubs listening")
        assert await _consumers(probe) == 0  # nothing is kept on the server for a live view

        await first.bus.publish(Topics.INCIDENTS, IncidentChange("inc-0123456789", "opened"))
        for lines in streams:  # each replica, not one of them
            event, data = await asyncio.wait_for(_next_event(lines), timeout=10)
            assert event == "incidents"
            assert data == {"incident_id": "inc-0123456789", "change": "opened", "value": None}
    assert await _consumers(probe) == 0  # both replicas stopped: nothing left on the server
