"""API fixtures: a real SQLite store at head, a wired app, one token per role, an httpx ASGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.app import App, build_app
from breakglass.config import load_config
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.migrate import upgrade_async

SECRET = "s" * 48


@pytest.fixture
async def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'breakglass.db'}"
    await upgrade_async(url)
    return url


@pytest.fixture
async def sessions(store_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(store_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def app(tmp_path: Path, store_url: str) -> AsyncIterator[App]:
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: testvenue\nstore:\n  url: {store_url}\n", encoding="utf-8")
    wired = build_app(load_config(config))
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
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
