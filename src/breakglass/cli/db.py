"""``breakglass db upgrade|downgrade|current``: the store's schema, by Alembic migrations only.

Also the store helpers the other store-backed commands share: which database (``--url`` or the
configuration's ``store.url``) and a session factory that is disposed of afterwards.
"""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from breakglass.cli.errors import handle_errors
from breakglass.logs import redact_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["ConfigOpt", "UrlOpt", "app", "cli_actor", "database_url", "open_store"]

app = typer.Typer(help="Create, upgrade and downgrade the database schema (Alembic migrations).")

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="BREAKGLASS_CONFIG", help="the breakglass YAML configuration"),
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="BREAKGLASS_STORE_URL", help="database URL; overrides the configuration"),
]
DEFAULT_CONFIG = Path("breakglass.yaml")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def database_url(config: Path, url: str | None) -> str:
    """``--url`` if given, else the configuration's ``store.url``."""
    from breakglass.config import load_config

    return url or load_config(config).settings.store.url


def cli_actor() -> str:
    """Who the timeline and audit log name for a command run in this terminal."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on ``url`` (migrated to head first, so a fresh install just works)."""
    from breakglass.store import migrate
    from breakglass.store.db import make_engine, make_sessionmaker

    await migrate.upgrade_async(url)
    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@app.command("upgrade")
@handle_errors
def upgrade(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from breakglass.store import migrate

    target = database_url(config, url)
    migrate.upgrade(target, revision)
    _console().print(f"{redact_url(target)}: at {migrate.current(target)}")


@app.command("downgrade")
@handle_errors
def downgrade(
    revision: Annotated[str, typer.Argument(help="target revision: an id, -1, or base")],
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Migrate the database down to REVISION (``base`` removes every table)."""
    from breakglass.store import migrate

    target = database_url(config, url)
    migrate.downgrade(target, revision)
    _console().print(f"{redact_url(target)}: at {migrate.current(target) or 'base (empty)'}")


@app.command("current")
@handle_errors
def current(config: ConfigOpt = DEFAULT_CONFIG, url: UrlOpt = None) -> None:
    """Show the database's revision and the newest one. Exit 1 when they differ."""
    from breakglass.store import migrate

    target = database_url(config, url)
    now, head = migrate.current(target), migrate.head()
    _console().print(f"{redact_url(target)}: at {now or 'base (empty)'}, newest {head}")
    if now != head:
        raise typer.Exit(1)
