"""``breakglass serve CONFIG [--role ROLE ...]``: the pipeline in this process, the REST API and the
dashboard (uvicorn) in a child process that it restarts when it dies (``api/process.py``). With
``--role``, only those roles' stages (``breakglass.roles``); without ``api`` among them, the probes
and ``/metrics`` alone on the listen address (``api/probes.py``)."""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from breakglass.cli.errors import handle_errors, stderr
from breakglass.roles import EVERY_ROLE, Role, check_roles, roles_of

if TYPE_CHECKING:
    from breakglass.config import LoadedConfig

__all__ = ["serve"]

SECRET_ENV = "BREAKGLASS_SESSION_SECRET"  # noqa: S105 (the variable's name, not its value)


async def _serve(
    config: LoadedConfig, host: str, port: int, forwarded_allow_ips: str | None, roles: frozenset[Role]
) -> None:
    # Imported here so that every other command starts without loading the web stack.
    from breakglass.api.process import serve_supervised
    from breakglass.app import build_app
    from breakglass.logs import logging_settings
    from breakglass.store.health import until_stored

    app = build_app(config, roles=roles)
    store = app.components.store
    # a store that is down at start-up is waited for (loudly), not a reason to exit
    await until_stored(store.health, "store.upgrade", store.upgrade, write=False)
    # What start-up built lives as long as the process: out of the collector's sight, a full
    # collection no longer walks it (~110 ms for ~150,000 objects here, each time one runs: in a
    # backfill or on the head path alike; docs/detection.md, "Backfill CPU outside decode and detection")
    gc.collect()
    gc.freeze()
    if Role.API not in roles:
        from breakglass.api.probes import serve_roles

        await serve_roles(app, host=host, port=port)
        return
    configured = config.settings.api.session_secret
    secret = configured.get_secret_value() if configured is not None else os.environ.get(SECRET_ENV)
    if not secret:
        stderr().print(
            f"note: neither api.session_secret nor {SECRET_ENV} is set; dashboard sessions end when the "
            "server restarts"
        )
        secret = secrets.token_urlsafe(48)  # the API's process may restart: its sessions outlive that
    app.redactor.add([secret])
    await serve_supervised(app, config.path, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips,
                           session_secret=secret, log_settings=logging_settings())  # fmt: skip


@handle_errors
def serve(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")],
    host: Annotated[
        str | None,
        typer.Option(help="listen address (default: api.host, 127.0.0.1); TLS in front for others"),
    ] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: api.port, 8080)")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="proxies trusted for X-Forwarded-Proto/For, comma-separated (default: api.trusted_proxies)"
        ),
    ] = None,
    role: Annotated[
        list[Role] | None,
        typer.Option(
            "--role",
            help="run only this role's stages (repeatable; default: every role). Roles in separate "
            "processes need bus.kind jetstream and a PostgreSQL store.url",
        ),
    ] = None,
) -> None:
    """Run the pipeline and serve the API (/api/v1, /metrics, /openapi.json, /readyz, /livez) and the
    dashboard (/) until interrupted.

    Upgrades the store's schema first. The configuration's ``api:`` section sets the listen address,
    the trusted proxies and the session secret (32+ characters, e.g. from ${BREAKGLASS_SESSION_SECRET})
    so that dashboard sessions survive a restart.

    Roles (--role, repeatable): detect (follower, detectors, attack simulation), simulate (mempool
    watcher and pending-transaction judge), respond (responder, guardian key), incidents (alerts,
    incidents, notifications, intel), api (API, dashboard, /metrics). A process without api answers
    /readyz, /livez and /metrics only, with its own roles' checks and metrics. docs/architecture.md,
    "Roles and processes"."""
    from breakglass.config import load_config

    loaded = load_config(config)
    roles = roles_of(role)
    check_roles(loaded, roles)  # before anything starts: a split needs a shared bus and store
    api = loaded.settings.api
    host = host or api.host
    port = port or api.port
    if forwarded_allow_ips is None and api.trusted_proxies:
        forwarded_allow_ips = ",".join(api.trusted_proxies)
    shown = "" if roles == EVERY_ROLE else f" as {', '.join(r.value for r in Role if r in roles)}"
    stderr().print(f"breakglass: serving {loaded.settings.protocol}{shown} on http://{host}:{port}/")
    asyncio.run(_serve(loaded, host, port, forwarded_allow_ips, roles))
