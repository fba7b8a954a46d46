"""The authorization matrix: every route, every role. Each role can do exactly what it should and no
more, unauthenticated callers get nothing, and every accepted mutating call leaves an audit record.

``MATRIX`` must name every route the application serves: a new route without a row fails
``test_the_matrix_covers_every_route``, so nobody adds an endpoint without deciding who may call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import BaseRoute

from breakglass.api.auth import Role
from breakglass.timeline import TimelineEvent, TimelineKind

INC = "{incident}"
HASH = "0x" + "ab" * 32
SIG = "0x" + "11" * 65


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    """Concrete path; ``{incident}`` is replaced by the fixture incident's id."""
    route: str
    """The route template it exercises."""
    least: Role
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None

    @property
    def mutating(self) -> bool:
        return self.method != "GET"


P, V, R, A = Role.PEER, Role.VIEWER, Role.RESPONDER, Role.ADMIN
T_ = "/taxii2/intel/collections"
I_ = "/api/v1/incidents"
# fmt: off
MATRIX: tuple[Row, ...] = (
    Row("GET", I_, I_, V),
    Row("GET", f"{I_}/{INC}", f"{I_}/{{incident_id}}", V),
    Row("GET", f"{I_}/{INC}/timeline", f"{I_}/{{incident_id}}/timeline", V),
    Row("POST", f"{I_}/{INC}/acknowledge", f"{I_}/{{incident_id}}/acknowledge", R),
    Row("POST", f"{I_}/{INC}/transition", f"{I_}/{{incident_id}}/transition", R, {"to": "contained"}),
    Row("POST", f"{I_}/{INC}/reopen", f"{I_}/{{incident_id}}/reopen", R, {"reason": "new evidence"}),
    Row("POST", f"{I_}/{INC}/severity", f"{I_}/{{incident_id}}/severity", R, {"severity": "critical"}),
    Row("POST", f"{I_}/{INC}/notes", f"{I_}/{{incident_id}}/notes", R, {"text": "looking"}),
    Row(
        "POST",
        f"{I_}/{INC}/participants",
        f"{I_}/{{incident_id}}/participants",
        R,
        {"name": "bob", "role": "scribe"},
    ),
    Row("POST", f"{I_}/{INC}/tasks", f"{I_}/{{incident_id}}/tasks", R, {"title": "rotate keys"}),
    Row(
        "POST",
        f"{I_}/{INC}/tasks/999/status",
        f"{I_}/{{incident_id}}/tasks/{{task_id}}/status",
        R,
        {"status": "done"},
    ),
    Row("GET", "/api/v1/alerts", "/api/v1/alerts", V),
    Row("GET", "/api/v1/silences", "/api/v1/silences", V),
    Row(
        "POST",
        "/api/v1/silences",
        "/api/v1/silences",
        R,
        {"matchers": ["monitor=solvency"], "comment": "maintenance", "duration_minutes": 30},
    ),
    Row("POST", "/api/v1/silences/1/expire", "/api/v1/silences/{silence_id}/expire", R),
    Row("GET", "/api/v1/timeline", "/api/v1/timeline", V),
    Row("GET", "/api/v1/timeline/verify", "/api/v1/timeline/verify", A),
    Row("GET", "/api/v1/actions", "/api/v1/actions", V),
    Row("GET", "/api/v1/actions/some-key", "/api/v1/actions/{key:path}", V),
    Row("GET", "/api/v1/safe/proposals", "/api/v1/safe/proposals", V),
    Row("GET", f"/api/v1/safe/proposals/{HASH}", "/api/v1/safe/proposals/{safe_tx_hash}", V),
    Row(
        "POST",
        f"/api/v1/safe/proposals/{HASH}/signatures",
        "/api/v1/safe/proposals/{safe_tx_hash}/signatures",
        R,
        {"signature": SIG},
    ),
    Row("GET", "/api/v1/invariants", "/api/v1/invariants", V),
    Row("GET", "/api/v1/health", "/api/v1/health", V),
    Row("GET", "/api/v1/tokens", "/api/v1/tokens", A),
    Row("POST", "/api/v1/tokens/viewer/revoke", "/api/v1/tokens/{name}/revoke", A),
    Row("GET", "/metrics", "/metrics", V),
    # Shared threat intelligence for other protocols (TAXII 2.1, read-only): peers and up.
    Row("GET", "/taxii2/", "/taxii2/", P),
    Row("GET", "/taxii2/intel/", "/taxii2/intel/", P),
    Row("GET", f"{T_}/", f"{T_}/", P),
    Row("GET", f"{T_}/x/", f"{T_}/{{collection}}/", P),
    Row("GET", f"{T_}/x/objects/", f"{T_}/{{collection}}/objects/", P),
    # The dashboard: pages and fragments read (viewer); its forms act (responder).
    Row("GET", "/", "/", V),
    Row("GET", f"/incidents/{INC}", "/incidents/{incident_id}", V),
    Row("GET", "/actions", "/actions", V),
    Row("GET", "/silences", "/silences", V),
    Row("GET", "/ui/incidents", "/ui/incidents", V),
    Row("GET", "/ui/invariants", "/ui/invariants", V),
    Row("GET", f"/ui/incidents/{INC}/panel", "/ui/incidents/{incident_id}/panel", V),
    Row("GET", f"/ui/incidents/{INC}/timeline", "/ui/incidents/{incident_id}/timeline", V),
    Row("GET", "/ui/actions", "/ui/actions", V),
    Row("GET", "/ui/silences", "/ui/silences", V),
    Row("POST", f"/ui/incidents/{INC}/acknowledge", "/ui/incidents/{incident_id}/acknowledge", R),
    Row(
        "POST",
        f"/ui/incidents/{INC}/transition",
        "/ui/incidents/{incident_id}/transition",
        R,
        form={"to": "contained"},
    ),
    Row(
        "POST",
        f"/ui/incidents/{INC}/notes",
        "/ui/incidents/{incident_id}/notes",
        R,
        form={"text": "from the dashboard"},
    ),
    Row(
        "POST",
        "/ui/silences",
        "/ui/silences",
        R,
        form={"matchers": "monitor=solvency", "comment": "window", "duration_minutes": "15"},
    ),
    Row("POST", "/ui/silences/1/expire", "/ui/silences/{silence_id}/expire", R),
    Row(
        "POST",
        f"/ui/safe/{HASH}/signatures",
        "/ui/safe/{safe_tx_hash}/signatures",
        R,
        form={"signature": SIG},
    ),
    Row("POST", "/logout", "/logout", V),
)
# fmt: on
UNGUARDED = {"/login", "/openapi.json", "/livez", "/readyz"}
"""Routes anyone may reach (the sign-in form, the public spec, the probes; /static is a mount)."""
STREAMED = {"/api/v1/events"}
"""Never-ending responses, which the in-memory transport cannot read: ``test_live_events.py`` checks
them over a real server (viewer and up; unauthenticated 401 is in ``test_auth.py``)."""


def _request(row: Row, incident_id: str, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return {
        "method": row.method,
        "url": row.path.replace(INC, incident_id),
        "headers": headers,
        "json": row.json,
        "data": row.form,
    }


async def _audits(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        query = select(func.count()).where(TimelineEvent.kind == TimelineKind.AUDIT.value)
        return int(await session.scalar(query) or 0)


def _flatten(routes: list[BaseRoute]) -> list[BaseRoute]:
    # FastAPI >= 0.16x keeps included routers as nodes; our routers carry their prefix themselves.
    out: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        out += _flatten(included.routes) if included is not None else [route]
    return out


def test_the_matrix_covers_every_route(api: FastAPI) -> None:
    served = {
        (method, route.path)
        for route in _flatten(api.routes)
        if isinstance(route, APIRoute) and route.path not in UNGUARDED | STREAMED
        for method in route.methods - {"HEAD"}
    }
    listed = {(row.method, row.route) for row in MATRIX}
    assert served - listed == set(), "routes without an authorization decision"
    assert listed - served == set(), "matrix rows for routes that do not exist"


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.route}")
async def test_unauthenticated_callers_get_401_and_no_data(
    client: httpx.AsyncClient, incident_id: str, row: Row
) -> None:
    response = await client.request(**_request(row, incident_id, None))
    assert response.status_code in (401, 303)  # 303: a browser page sends the visitor to /login
    if response.status_code == 401:
        assert response.json() == {"detail": "unauthorized"}
    else:
        assert response.headers["location"].startswith("/login")
        assert response.content == b""
    assert incident_id not in response.text


@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} {r.route}")
@pytest.mark.parametrize("role", list(Role), ids=str)
async def test_each_role_can_do_exactly_what_it_should(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tokens: dict[Role, str],
    incident_id: str,
    row: Row,
    role: Role,
) -> None:
    before = await _audits(sessions)
    response = await client.request(**_request(row, incident_id, tokens[role]))
    if role < row.least:
        assert response.status_code == 403, response.text
        assert response.json() == {"detail": "forbidden"}
        assert await _audits(sessions) == before, "a refused call must change nothing"
        return
    assert response.status_code not in (401, 403), response.text
    assert response.status_code < 500, response.text
    if row.mutating and response.is_success:
        assert await _audits(sessions) > before, f"{row.method} {row.route} left no audit record"
