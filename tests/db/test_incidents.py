"""The incident service on a real database: lifecycle with timestamps, people, tasks, notes."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import InProcessBus, Topics
from breakglass.domain import Severity
from breakglass.incidents.errors import IncidentNotFound, InvalidTransition
from breakglass.incidents.metrics import incident_metrics
from breakglass.incidents.models import IncidentChange, IncidentState, Resolution, Role, TaskKind, TaskStatus
from breakglass.incidents.service import IncidentService
from breakglass.store.outbox import transaction
from breakglass.testing import FakeClock, make_finding
from breakglass.timeline import TimelineKind, verify_chain

S = IncidentState


async def _open(sessions: async_sessionmaker[AsyncSession], service: IncidentService) -> str:
    finding = make_finding(evidence={"block_timestamp": 1_699_999_990, "first_block": 98})
    async with transaction(sessions) as session:
        attached = await service.attach_finding(session, finding, group_key="g", group_labels={},
                                                window_ms=60_000)  # fmt: skip
    assert attached.created
    return attached.incident.id


async def test_a_lifecycle_stamps_every_transition_and_gives_the_metrics(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock(1_700_000_000_000)
    service = IncidentService(clock, protocol="perp")
    incident_id = await _open(sessions, service)
    steps = [(S.TRIAGED, None), (S.CONTAINED, None), (S.ERADICATED, None), (S.RECOVERED, None),
             (S.CLOSED, Resolution.TRUE_POSITIVE)]  # fmt: skip
    for state, resolution in steps:
        clock.advance(60)
        async with transaction(sessions) as session:
            block = 101 if state is S.CONTAINED else None
            await service.transition(session, incident_id, state, actor="alice",
                                     resolution=resolution, block=block)  # fmt: skip
    async with sessions() as session:
        incident = await service.get(session, incident_id)
        transitions = await service.transitions(session, incident_id)
        timeline = await service.timeline(session, incident_id)
        assert (await verify_chain(session)).ok
    assert incident.state == "closed" and incident.resolution == "true_positive"
    start = 1_700_000_000_000
    assert [incident.triaged_at, incident.contained_at, incident.eradicated_at, incident.recovered_at,
            incident.closed_at] == [start + 60_000 * i for i in range(1, 6)]  # fmt: skip
    assert [(t.from_state, t.to_state) for t in transitions] == [
        ("detected", "triaged"), ("triaged", "contained"), ("contained", "eradicated"),
        ("eradicated", "recovered"), ("recovered", "closed")]  # fmt: skip
    changes = [e.data["to"] for e in timeline if e.kind is TimelineKind.STATE_CHANGE]
    assert changes == ["detected", "triaged", "contained", "eradicated", "recovered", "closed"]
    metrics = incident_metrics(incident)
    assert metrics.ttd_ms == 10_000  # onset from the evidence's block timestamp
    assert metrics.ttc_ms == 120_000 and metrics.ttr_ms == 240_000
    assert (metrics.ttd_blocks, metrics.ttc_blocks) == (2, 1)


async def test_an_invalid_transition_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _open(sessions, service)
    async with transaction(sessions) as session:
        await service.transition(session, incident_id, S.CONTAINED, actor="bot")
    with pytest.raises(InvalidTransition, match="contained -> triaged"):
        async with transaction(sessions) as session:
            await service.transition(session, incident_id, S.TRIAGED, actor="alice")
    async with sessions() as session:
        incident = await service.get(session, incident_id)
        assert incident.state == "contained" and incident.triaged_at is None
        assert len(await service.transitions(session, incident_id)) == 1


async def test_a_duplicate_must_name_an_existing_incident(sessions: async_sessionmaker[AsyncSession]) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _open(sessions, service)
    with pytest.raises(IncidentNotFound):
        async with transaction(sessions) as session:
            await service.transition(session, incident_id, S.CLOSED, actor="alice",
                                     resolution=Resolution.DUPLICATE, duplicate_of="inc-nope")  # fmt: skip


async def test_acknowledging_triages_and_makes_a_commander_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _open(sessions, service)
    for actor in ("alice", "bob"):
        async with transaction(sessions) as session:
            await service.acknowledge(session, incident_id, actor=actor)
    async with sessions() as session:
        incident = await service.get(session, incident_id)
        people = [(p.name, p.role) for p in await service.participants(session, incident_id)]
    assert incident.state == "triaged" and incident.acknowledged_by == "alice"
    assert people == [("alice", "commander")]


async def test_participants_tasks_and_notes_reach_the_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _open(sessions, service)
    async with transaction(sessions) as session:
        await service.add_participant(session, incident_id, name="carol", role=Role.SIGNER, actor="alice")
        await service.add_participant(session, incident_id, name="carol", role=Role.SIGNER, actor="alice")
        await service.add_note(session, incident_id, actor="alice", text="oracle feed looks stale")
        first = await service.add_task(session, incident_id, title="ratify", actor="bot",
                                       kind=TaskKind.RATIFICATION, due_at=5, ref="k1")  # fmt: skip
        again = await service.add_task(session, incident_id, title="ratify", actor="bot", ref="k1")
        await service.set_task_status(session, first.id, TaskStatus.DONE, actor="alice")
    assert again.id == first.id
    async with sessions() as session:
        tasks = await service.tasks(session, incident_id)
        kinds = [e.kind for e in await service.timeline(session, incident_id)]
        participants = await service.participants(session, incident_id)
    assert [(t.kind, t.status, t.due_at) for t in tasks] == [("ratification", "done", 5)]
    assert len(participants) == 1
    assert kinds.count(TimelineKind.PARTICIPANT) == 1 and kinds.count(TimelineKind.TASK) == 2
    assert TimelineKind.NOTE in kinds


async def test_unknown_incidents_are_reported_by_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    service = IncidentService(FakeClock())
    with pytest.raises(IncidentNotFound, match="inc-missing"):
        async with sessions() as session:
            await service.add_note(session, "inc-missing", actor="a", text="x")


async def test_changes_are_published_after_commit_and_not_after_rollback(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = InProcessBus()
    changes = bus.subscribe(Topics.INCIDENTS, "test")
    service = IncidentService(FakeClock())
    async with transaction(sessions, bus) as session:
        attached = await service.attach_finding(session, make_finding(), group_key="g",
                                                group_labels={}, window_ms=1000)  # fmt: skip
    incident_id = attached.incident.id
    with pytest.raises(RuntimeError):
        async with transaction(sessions, bus) as session:
            await service.transition(session, incident_id, S.TRIAGED, actor="a")
            raise RuntimeError("the edge failed after the service call")
    async with transaction(sessions, bus) as session:
        await service.escalate(session, incident_id, Severity.CRITICAL, actor="a")
    await bus.close()
    received = [change async for change in changes]
    assert received == [IncidentChange(incident_id, "opened"),
                        IncidentChange(incident_id, "escalated", "critical")]  # fmt: skip


async def test_find_filters_by_state_newest_first(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = FakeClock()
    service = IncidentService(clock)
    ids = []
    for key in ("a", "b", "c"):
        clock.advance(1)
        async with transaction(sessions) as session:
            attached = await service.attach_finding(session, make_finding(labels={"k": key}),
                                                    group_key=key, group_labels={}, window_ms=1)  # fmt: skip
            ids.append(attached.incident.id)
    async with transaction(sessions) as session:
        await service.transition(session, ids[0], S.CLOSED, actor="a", resolution=Resolution.BENIGN)
    async with sessions() as session:
        assert [i.id for i in await service.find(session)] == ids[::-1]
        open_ids = [i.id for i in await service.find(session, states={S.DETECTED})]
    assert open_ids == [ids[2], ids[1]]
