"""Shared pieces of the follower tests: a SQLite checkpoint store with its tables created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.store.db import Base, make_engine, make_sessionmaker


@pytest.fixture
async def checkpoints(tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cursor.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield CheckpointStore(make_sessionmaker(engine))
    await engine.dispose()
