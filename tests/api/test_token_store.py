"""The token store on both databases: create, verify, revoke, and what it refuses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import Role, TokenError, TokenStore
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.migrate import upgrade_async
from breakglass.store.tokens import ApiToken


def _admin(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tokens.db'}"
        return
    base = request.getfixturevalue("postgres_url")
    name = f"bg_tokens_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await upgrade_async(db_url)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_created_token_verifies_to_its_name_and_role_and_is_stored_only_as_a_digest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        _row, token = await TokenStore(session).create("alice", Role.RESPONDER)
    assert token.startswith("bgt_") and len(token) >= 40
    async with sessions() as session, session.begin():
        principal = await TokenStore(session).verify(token)
        stored = await session.scalar(select(ApiToken).where(ApiToken.name == "alice"))
    assert principal is not None
    assert (principal.name, principal.role, principal.via) == ("alice", Role.RESPONDER, "token")
    assert stored is not None and stored.last_used_at is not None
    assert token not in (stored.digest, stored.lookup) and token[4:] not in stored.digest


async def test_names_are_unique_and_revocation_is_immediate_and_idempotent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        _row, token = await TokenStore(session).create("ci", Role.VIEWER)
    async with sessions() as session, session.begin():
        with pytest.raises(TokenError, match="already exists"):
            await TokenStore(session).create("ci", Role.ADMIN)
    async with sessions() as session, session.begin():
        first = await TokenStore(session).revoke("ci")
        again = await TokenStore(session).revoke("ci")
        assert first.revoked_at == again.revoked_at
        assert await TokenStore(session).verify(token) is None
        assert await TokenStore(session).by_id(first.id) is None
        with pytest.raises(TokenError, match="no token named"):
            await TokenStore(session).revoke("nobody")


async def test_concurrent_verifications_of_one_token_all_succeed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        _row, token = await TokenStore(session).create("dash", Role.VIEWER)

    async def verify() -> bool:
        async with sessions() as session, session.begin():
            return await TokenStore(session).verify(token) is not None

    assert all(await asyncio.gather(*(verify() for _ in range(8))))


@pytest.mark.parametrize("bad", ["", "bgt_", "nope", "bgt_" + "x" * 300, "Bearer bgt_abc"])
async def test_malformed_tokens_verify_to_nobody(
    sessions: async_sessionmaker[AsyncSession], bad: str
) -> None:
    async with sessions() as session:
        assert await TokenStore(session).verify(bad) is None
