"""Secrets never reach the API or the dashboard: a configured secret that turns up in data (here a
webhook signing key pasted into a finding's evidence) is redacted from JSON and HTML answers alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role
from breakglass.app import build_app
from breakglass.clock import SystemClock
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.service import IncidentService
from breakglass.store.outbox import transaction
from breakglass.testing import make_finding

SIGNING_KEY = "whsec-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
async def secret_client(
    tmp_path: Path, store_url: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    config = tmp_path / "secret.yaml"
    config.write_text(
        f"protocol: testvenue\nstore:\n  url: {store_url}\nnotifications:\n  channels:\n"
        f"    - {{name: soc, kind: webhook, url: 'https://soc.example/hook', secret: '{SIGNING_KEY}'}}\n",
        encoding="utf-8",
    )
    app = build_app(load_config(config))
    api = create_api(app, session_secret="r" * 40, sessions=sessions)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://testserver") as http,
    ):
        yield http
    await app.close()


async def test_a_configured_secret_inside_incident_data_is_redacted_in_json_and_html(
    secret_client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str]
) -> None:
    service = IncidentService(SystemClock(), protocol="testvenue")
    leaky = make_finding("leak", severity=Severity.HIGH, evidence={"note": f"key is {SIGNING_KEY}"})
    async with transaction(sessions) as session:
        attached = await service.attach_finding(
            session, leaky, group_key="g", group_labels={}, window_ms=1000
        )
    incident_id = attached.incident.id
    headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}

    timeline = await secret_client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=headers)
    assert timeline.status_code == 200
    assert SIGNING_KEY not in timeline.text
    assert "key is [redacted]" in timeline.text
    assert int(timeline.headers["content-length"]) == len(timeline.content)

    page = await secret_client.get(f"/incidents/{incident_id}", headers=headers)
    assert page.status_code == 200
    assert SIGNING_KEY not in page.text
