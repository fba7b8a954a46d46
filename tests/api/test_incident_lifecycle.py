"""The lifecycle through the API: a closed incident takes no change but a reopen (409 for every
other write, nothing recorded), reopening returns it to the state it was closed from, and an
incident cannot be closed as a duplicate of itself (issue 13)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import Role
from breakglass.timeline import TimelineEvent

WRITES = [
    ("acknowledge", None),
    ("transition", {"to": "contained"}),
    ("severity", {"severity": "critical"}),
    ("notes", {"text": "too late"}),
    ("participants", {"name": "bob", "role": "scribe"}),
    ("tasks", {"title": "rotate keys"}),
]


async def _events(sessions: async_sessionmaker[AsyncSession], incident_id: str) -> int:
    async with sessions() as session:
        query = select(func.count()).where(TimelineEvent.incident_id == incident_id)
        return int(await session.scalar(query) or 0)


@pytest.fixture
def headers(tokens: dict[Role, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[Role.RESPONDER]}"}


async def test_a_closed_incident_refuses_every_change_but_reopen(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    incident_id: str,
    headers: dict[str, str],
) -> None:
    base = f"/api/v1/incidents/{incident_id}"
    task = await client.post(f"{base}/tasks", json={"title": "before closing"}, headers=headers)
    assert task.status_code == 201
    contained = await client.post(f"{base}/transition", json={"to": "contained"}, headers=headers)
    assert contained.status_code == 200
    closed = await client.post(f"{base}/transition", json={"to": "closed", "resolution": "true_positive"},
                               headers=headers)  # fmt: skip
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    before = await _events(sessions, incident_id)
    refused = [*WRITES, (f"tasks/{task.json()['id']}/status", {"status": "done"})]
    for path, body in refused:
        response = await client.post(f"{base}/{path}", json=body, headers=headers)
        assert response.status_code == 409, (path, response.text)
        assert "closed" in response.json()["detail"], response.text
    assert await _events(sessions, incident_id) == before, "a refused change left a trace"

    reopened = await client.post(f"{base}/reopen", json={"reason": "the attacker came back"}, headers=headers)
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert (body["state"], body["resolution"], body["closed_at"]) == ("contained", None, None)
    note = await client.post(f"{base}/notes", json={"text": "watching again"}, headers=headers)
    assert note.status_code == 201
    again = await client.post(f"{base}/reopen", json={"reason": "twice"}, headers=headers)
    assert again.status_code == 409 and "only a closed incident" in again.json()["detail"]
    detail = (await client.get(base, headers=headers)).json()
    moves = [(t["from_state"], t["to_state"]) for t in detail["transitions"]]
    assert moves[-2:] == [("contained", "closed"), ("closed", "contained")]


async def test_an_incident_cannot_be_closed_as_a_duplicate_of_itself(
    client: httpx.AsyncClient, incident_id: str, headers: dict[str, str]
) -> None:
    body = {"to": "closed", "resolution": "duplicate", "duplicate_of": incident_id}
    response = await client.post(f"/api/v1/incidents/{incident_id}/transition", json=body, headers=headers)
    assert response.status_code == 409 and "duplicate itself" in response.json()["detail"]
    detail = await client.get(f"/api/v1/incidents/{incident_id}", headers=headers)
    assert detail.json()["incident"]["state"] == "detected"
