"""Concurrent lifecycle changes on a real database (SQLite and PostgreSQL): a transition is a
compare-and-set on the state it was checked against, so two writers that both read ``detected``
cannot both move the incident, and the loser re-reads and decides again.

The reproduction (issue 13): automatic containment racing a person clicking Acknowledge left
incidents in ``triaged`` with ``contained_at`` set (5 of 8 on SQLite, 4 of 8 on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.app import build_app
from breakglass.config import load_config
from breakglass.incidents.models import IncidentState, Resolution
from breakglass.incidents.service import IncidentService
from breakglass.store.outbox import in_transaction, transaction
from breakglass.testing import FakeClock, make_finding

S = IncidentState
ROUNDS = 8


async def _open(sessions: async_sessionmaker[AsyncSession], service: IncidentService, key: str) -> str:
    async with transaction(sessions) as session:
        attached = await service.attach_finding(session, make_finding(key), group_key=key,
                                                group_labels={}, window_ms=60_000)  # fmt: skip
    return attached.incident.id


def _consistent(incident: object, transitions: list[tuple[str, str]]) -> None:
    """The state, its timestamps and the transition rows tell one story."""
    state = incident.state  # type: ignore[attr-defined]
    chain = [S.DETECTED.value]
    for from_state, to_state in transitions:
        assert from_state == chain[-1], (transitions, state)
        chain.append(to_state)
    assert chain[-1] == state, (transitions, state)
    if incident.contained_at is not None:  # type: ignore[attr-defined]
        assert S.CONTAINED.value in chain, (transitions, state)


@pytest.fixture
async def api_client(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: race\nstore:\n  url: {migrated_url}\n", encoding="utf-8")
    app = build_app(load_config(config))
    api = create_api(app, session_secret="r" * 40, sessions=sessions)
    async with transaction(sessions) as session:
        _row, token = await TokenStore(session).create("alice", Role.RESPONDER)
    transport = httpx.ASGITransport(app=api)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(transport=transport, base_url="http://testserver",
                          headers={"Authorization": f"Bearer {token}"}) as client,
    ):  # fmt: skip
        yield client
    await app.close()


async def test_acknowledge_racing_containment_never_leaves_a_contained_incident_triaged(
    sessions: async_sessionmaker[AsyncSession], api_client: httpx.AsyncClient
) -> None:
    service = IncidentService(FakeClock())
    for round_ in range(ROUNDS):
        incident_id = await _open(sessions, service, f"race-{round_}")
        base = f"/api/v1/incidents/{incident_id}"
        ack, contain = await asyncio.gather(
            api_client.post(f"{base}/acknowledge"),
            api_client.post(f"{base}/transition", json={"to": "contained", "block": 7}),
        )
        # Both are allowed from detected; whichever lands second re-reads and still succeeds
        # (acknowledge records the person without moving a contained incident back).
        assert ack.status_code == 200, ack.text
        assert contain.status_code in (200, 409), contain.text
        async with sessions() as session:
            incident = await service.get(session, incident_id)
            moves = [(t.from_state, t.to_state) for t in await service.transitions(session, incident_id)]
        _consistent(incident, moves)
        assert incident.acknowledged_by == "alice"
        if contain.status_code == 200:
            assert incident.state == S.CONTAINED.value and incident.contained_block == 7


async def test_two_writers_closing_and_containing_at_once_make_exactly_one_story(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    for round_ in range(ROUNDS):
        incident_id = await _open(sessions, service, f"close-{round_}")

        async def move(to: S, resolution: Resolution | None, iid: str = incident_id) -> str:
            async def work(session: AsyncSession) -> str:
                incident = await service.transition(session, iid, to, actor="x", resolution=resolution)
                return incident.state

            try:
                return await in_transaction(sessions, None, work)
            except Exception as exc:
                return type(exc).__name__

        results = await asyncio.gather(move(S.CONTAINED, None), move(S.CLOSED, Resolution.BENIGN))
        async with sessions() as session:
            incident = await service.get(session, incident_id)
            moves = [(t.from_state, t.to_state) for t in await service.transitions(session, incident_id)]
        _consistent(incident, moves)
        # Either order is a valid story: contained then closed, or closed (containment refused).
        assert incident.state == S.CLOSED.value, (results, moves)
        assert results[1] == S.CLOSED.value
        assert results[0] in (S.CONTAINED.value, "InvalidTransition"), results
