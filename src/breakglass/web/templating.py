"""The Jinja2 environment of the dashboard and the values every page template receives."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from breakglass.api.auth import Principal
from breakglass.api.context import ApiContext

__all__ = ["render", "templates"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _ms_to_text(ms: int | float | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value: str | None, keep: int = 10) -> str:
    if not value:
        return "—"
    return value if len(value) <= 2 * keep + 1 else f"{value[:keep]}…{value[-4:]}"


def _clock(ms: int | float | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


templates.env.filters["ms"] = _ms_to_text
templates.env.filters["clock"] = _clock
templates.env.filters["short"] = _short


def render(
    request: Request, name: str, values: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    """Render ``name`` with the caller, its CSRF token and the protocol name available to the layout."""
    principal = getattr(request.state, "principal", None)
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    base: dict[str, Any] = {
        "principal": principal if isinstance(principal, Principal) else None,
        "csrf": principal.csrf if isinstance(principal, Principal) else None,
        "protocol": ctx.app.config.settings.protocol,
        # several chains: every alert, finding and action says its chain by name (one chain: nothing)
        "chains": {c.chain_id: c.name for c in ctx.app.config.settings.chains},
    }
    return templates.TemplateResponse(request, name, base | (values or {}), status_code=status_code)
