"""``breakglass tokens create|list|revoke``: API tokens; the clear token is printed once, then gone."""

from __future__ import annotations

import asyncio
import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors

if TYPE_CHECKING:
    from breakglass.api.auth import Role

__all__ = ["app"]

app = typer.Typer(help="Create, list and revoke API tokens (roles: viewer < responder < admin).")

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="BREAKGLASS_CONFIG", help="the breakglass YAML configuration"),
]
DEFAULT_CONFIG = Path("breakglass.yaml")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _store_url(config: Path) -> str:
    from breakglass.config import load_config

    return load_config(config).settings.store.url


def _actor() -> str:
    # The audit log names who ran the command on the server; the token's own name is the target.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


async def _create(url: str, name: str, role: Role) -> str:
    from breakglass.api.auth import TokenStore
    from breakglass.store.db import make_engine, make_sessionmaker
    from breakglass.store.migrate import upgrade_async
    from breakglass.timeline import record_audit

    await upgrade_async(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            _row, token = await TokenStore(session).create(name, role)
            await record_audit(session, actor=_actor(), action="token.create",
                               at=int(time.time() * 1000), target=f"token:{name}",
                               details={"role": str(role)})  # fmt: skip
        return token
    finally:
        await engine.dispose()


@app.command("create")
@handle_errors
def create(
    role: Annotated[str, typer.Option("--role", help="peer, viewer, responder or admin")],
    name: Annotated[str, typer.Option("--name", help="who or what holds it, unique")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Create a token and print it once; only its SHA-256 digest is stored."""
    from breakglass.api.auth import Role

    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--role") from exc
    url = _store_url(config)
    token = asyncio.run(_create(url, name, parsed))  # a TokenError exits 1 with its message
    # Plain print, no Rich markup or wrapping: the line must copy and paste exactly.
    typer.echo(token)
    typer.echo(f"token {name!r} ({parsed}) created; it is shown only now.", err=True)


async def _list(url: str) -> list[tuple[str, str, str, str, str]]:
    from breakglass.api.auth import TokenStore
    from breakglass.store.db import make_engine, make_sessionmaker
    from breakglass.store.migrate import upgrade_async

    await upgrade_async(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await TokenStore(session).list()
            return [(r.name, r.role, f"{r.created_at:%Y-%m-%d %H:%M}",
                     f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never",
                     f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "")
                    for r in rows]  # fmt: skip
    finally:
        await engine.dispose()


@app.command("list")
@handle_errors
def list_(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """List tokens (names and roles; the tokens themselves are not stored)."""
    rows = asyncio.run(_list(_store_url(config)))
    table = Table("name", "role", "created", "last used", "revoked")
    for row in rows:
        table.add_row(*row)
    _console().print(table)


async def _revoke(url: str, name: str) -> None:
    from breakglass.api.auth import TokenStore
    from breakglass.store.db import make_engine, make_sessionmaker
    from breakglass.store.migrate import upgrade_async
    from breakglass.timeline import record_audit

    await upgrade_async(url)
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await TokenStore(session).revoke(name)
            await record_audit(session, actor=_actor(), action="token.revoke",
                               at=int(time.time() * 1000), target=f"token:{name}")  # fmt: skip
    finally:
        await engine.dispose()


@app.command("revoke")
@handle_errors
def revoke(
    name: Annotated[str, typer.Argument(help="the token's name")], config: ConfigOpt = DEFAULT_CONFIG
) -> None:
    """Revoke a token at once; dashboard sessions opened with it end too."""
    asyncio.run(_revoke(_store_url(config), name))
    _console().print(f"token {name!r} revoked")
