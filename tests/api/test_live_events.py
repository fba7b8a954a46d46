"""The live event stream over a real HTTP server (uvicorn): what the bus carries reaches every
authenticated client as server-sent events, and nothing reaches anyone else."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import Role, TokenStore
from breakglass.app import App
from breakglass.bus import Topics
from breakglass.incidents.models import IncidentChange
from breakglass.testing import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def base_url(api: FastAPI) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, within=10, what="uvicorn started")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _frames(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, object]]]:
    event = None
    async for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event is not None:
            yield event, json.loads(line[len("data: ") :])
            event = None


@pytest.mark.parametrize("role", [r for r in Role if r >= Role.VIEWER], ids=str)
async def test_every_role_receives_published_incident_changes_as_server_sent_events(
    base_url: str, app: App, tokens: dict[Role, str], role: Role
) -> None:
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        assert await anext(lines) == "retry: 2000"  # the greeting: we are subscribed from here on
        await app.bus.publish(Topics.INCIDENTS, IncidentChange("inc-0123456789", "opened"))
        event, data = await asyncio.wait_for(anext(_frames(lines)), timeout=10)
    assert event == "incidents"
    assert data == {"incident_id": "inc-0123456789", "change": "opened", "value": None}


async def test_a_client_that_goes_away_is_forgotten(
    base_url: str, api: FastAPI, tokens: dict[Role, str]
) -> None:
    hub = api.state.ctx.hub
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=headers) as response,
    ):
        assert await anext(response.aiter_lines()) == "retry: 2000"
        assert hub.clients == 1
    await wait_until(lambda: hub.clients == 0, within=10, what="the closed stream's queue released")


async def test_the_stream_refuses_callers_without_a_valid_token(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer bgt_forged"}):
            response = await http.get("/api/v1/events", headers=headers)
            assert response.status_code == 401
            assert response.json() == {"detail": "unauthorized"}


async def test_revoking_a_token_ends_its_open_stream(
    base_url: str, api: FastAPI, sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str]
) -> None:
    api.state.ctx.live_recheck = 0.2  # production: 15 s
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=headers) as response,
    ):
        lines = response.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        async with sessions() as session, session.begin():
            await TokenStore(session).revoke("viewer")
        # The server closes the stream: the remaining lines are heartbeats at most, then the end.
        rest = [line async for line in lines]
    assert all(line in ("", ": connected", ": ping") for line in rest), rest
