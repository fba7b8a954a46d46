"""Schema migrations, programmatically: ``upgrade(url)`` creates or updates the schema to head.

Alembic runs with its script folder inside the package (no alembic.ini needed). The functions are
synchronous (Alembic's ``env.py`` runs its own event loop); from async code call the ``*_async``
twins, which run them in a worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from breakglass.store.db import make_engine

__all__ = [
    "alembic_config",
    "current",
    "current_async",
    "downgrade",
    "downgrade_async",
    "head",
    "revision",
    "upgrade",
    "upgrade_async",
]

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Passed as an attribute, not an option: ConfigParser would mangle a '%' in a password.
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "-1") -> None:
    command.downgrade(alembic_config(url), revision)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_async(url: str) -> str | None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def current(url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    return asyncio.run(current_async(url))


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


async def downgrade_async(url: str, revision: str = "-1") -> None:
    await asyncio.to_thread(downgrade, url, revision)


def revision(url: str, message: str) -> None:
    """Autogenerate the next migration (``NNNN_message.py``) from ``url``'s schema (at head)
    compared with the metadata."""
    number = len(list((MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))) + 1
    config = alembic_config(url)
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    command.revision(config, message=message, autogenerate=True, rev_id=f"{number:04d}")
