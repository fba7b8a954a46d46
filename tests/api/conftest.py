"""API fixtures: a real SQLite store at head, a wired app, one token per role, an httpx ASGI client."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.app import App, build_app
from breakglass.clock import SystemClock
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.service import IncidentService
from breakglass.respond import HttpRpc, build_responder
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.migrate import upgrade_async
from breakglass.store.outbox import transaction
from breakglass.testing import make_finding

SECRET = "s" * 48


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head per session; each test gets a copy (migrating takes ~0.2 s)."""
    path = tmp_path_factory.mktemp("store") / "template.db"
    asyncio.run(upgrade_async(f"sqlite:///{path}"))
    return path


@pytest.fixture
def store_url(tmp_path: Path, migrated_db: Path) -> str:
    target = tmp_path / "breakglass.db"
    shutil.copyfile(migrated_db, target)
    return f"sqlite:///{target}"


@pytest.fixture
async def sessions(store_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(store_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def app(
    tmp_path: Path, store_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[App]:
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: testvenue\nstore:\n  url: {store_url}\n", encoding="utf-8")
    wired = build_app(load_config(config))
    # The response engine as build_responder wires it, on a chain that is never reached here (no
    # proposal exists, so no route gets as far as an RPC call).
    wired.components.respond = build_responder(
        wired.config, wired.bus, wired.redactor, sessions=sessions, rpc=HttpRpc("http://127.0.0.1:9")
    )
    yield wired
    await wired.close()


@pytest.fixture
async def api(app: App, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[FastAPI]:
    asgi = create_api(app, session_secret=SECRET, sessions=sessions)
    async with asgi.router.lifespan_context(asgi):
        yield asgi


@pytest.fixture
async def tokens(sessions: async_sessionmaker[AsyncSession]) -> dict[Role, str]:
    """A clear token per role, named after the role."""
    out: dict[Role, str] = {}
    async with sessions() as session, session.begin():
        for role in Role:
            _row, token = await TokenStore(session).create(str(role), role)
            out[role] = token
    return out


@pytest.fixture
async def incident_id(sessions: async_sessionmaker[AsyncSession]) -> str:
    """An open incident (detected) with one finding, made by the incident service itself."""
    service = IncidentService(SystemClock(), protocol="testvenue")
    async with transaction(sessions) as session:
        attached = await service.attach_finding(
            session, make_finding("solvency", severity=Severity.CRITICAL), group_key="g",
            group_labels={"protocol": "testvenue"}, window_ms=60_000,
        )  # fmt: skip
    return attached.incident.id


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
