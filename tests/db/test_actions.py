"""Response actions land in the incident: timeline, containment on confirmation, ratification tasks."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import InProcessBus, Topics
from breakglass.domain import Severity
from breakglass.incidents.actions import ActionRecorder
from breakglass.incidents.consumer import ActionConsumer
from breakglass.incidents.models import IncidentChange, TaskStatus
from breakglass.incidents.service import IncidentService
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.store.outbox import transaction
from breakglass.testing import FakeClock, make_finding
from breakglass.timeline import TimelineKind, list_events, verify_chain

FINDING = make_finding("oracle-deviation", block=100, severity=Severity.HIGH)
PAUSE = ActionEvent(
    step=ActionStep.INTENT, key=f"{FINDING.fingerprint}:guard.pause:Venue.pause()", playbook="guard",
    action="pause", target="Venue.pause()", finding_fingerprint=FINDING.fingerprint,
    monitor_id="oracle-deviation",
)  # fmt: skip


async def _incident(sessions: async_sessionmaker[AsyncSession], service: IncidentService) -> str:
    async with transaction(sessions) as session:
        attached = await service.attach_finding(session, FINDING, group_key="g", group_labels={},
                                                window_ms=60_000)  # fmt: skip
    return attached.incident.id


async def test_a_confirmed_pause_contains_the_incident_at_its_block(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = IncidentService(clock)
    incident_id = await _incident(sessions, service)
    bus = InProcessBus()
    changes = bus.subscribe(Topics.INCIDENTS, "test")
    consumer = ActionConsumer(sessions, bus, ActionRecorder(service))
    tx = "0x" + "cd" * 32
    clock.advance(2)
    steps = [(ActionStep.INTENT, {}), (ActionStep.SIGNED, {"nonce": 7}), (ActionStep.SUBMITTED, {}),
             (ActionStep.CONFIRMED, {"block_number": 101})]  # fmt: skip
    for step, detail in steps:
        event = replace(PAUSE, step=step, tx_hash=None if step is ActionStep.INTENT else tx, detail=detail)
        assert (await consumer.handle(event)) is not None
    await bus.close()
    async with sessions() as session:
        incident = await service.get(session, incident_id)
        timeline = await service.timeline(session, incident_id)
        assert (await verify_chain(session)).ok
    assert incident.state == "contained" and incident.contained_block == 101
    assert incident.contained_at == incident.detected_at + 2000
    kinds = [(e.kind, e.data.get("step") or e.data.get("to")) for e in timeline[2:]]
    assert kinds == [
        (TimelineKind.ACTION, "intent"),
        (TimelineKind.TRANSACTION, "signed"),
        (TimelineKind.TRANSACTION, "submitted"),
        (TimelineKind.TRANSACTION, "confirmed"),
        (TimelineKind.STATE_CHANGE, "contained"),
    ]
    assert [c async for c in changes] == [IncidentChange(incident_id, "state", "contained")]


async def test_a_second_confirmation_does_not_move_a_contained_incident_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _incident(sessions, service)
    recorder = ActionRecorder(service)
    for _ in range(2):
        async with transaction(sessions) as session:
            await recorder.record(session, replace(PAUSE, step=ActionStep.CONFIRMED))
    async with sessions() as session:
        assert len(await service.transitions(session, incident_id)) == 1


async def test_a_ratification_window_is_a_task_due_at_the_deadline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _incident(sessions, service)
    recorder = ActionRecorder(service)
    opened = replace(PAUSE, step=ActionStep.RATIFICATION_OPENED,
                     detail={"contract": "Venue", "view": "ratified", "deadline": 1_700_003_600})  # fmt: skip
    async with transaction(sessions) as session:
        await recorder.record(session, opened)
        await recorder.record(session, opened)  # redelivered: still one task
    async with transaction(sessions) as session:
        await recorder.record(session, replace(opened, step=ActionStep.LAPSED))
    async with sessions() as session:
        (task,) = await service.tasks(session, incident_id)
    assert (task.kind, task.due_at, task.status) == (
        "ratification",
        1_700_003_600_000,
        TaskStatus.CANCELLED.value,
    )
    assert "Venue" in task.title


async def test_escalate_raises_severity_and_safe_signatures_are_typed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _incident(sessions, service)
    recorder = ActionRecorder(service)
    async with transaction(sessions) as session:
        await recorder.record(
            session, replace(PAUSE, step=ActionStep.ESCALATE, detail={"severity": "critical"})
        )
        await recorder.record(
            session, replace(PAUSE, step=ActionStep.SAFE_SIGNED, detail={"signer": "0xabc"})
        )
    async with sessions() as session:
        incident = await service.get(session, incident_id)
        kinds = [e.kind for e in await service.timeline(session, incident_id)]
    assert incident.severity == Severity.CRITICAL
    assert TimelineKind.SIGNATURE in kinds


async def test_an_action_without_an_incident_goes_to_the_audit_chain(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    recorder = ActionRecorder(IncidentService(FakeClock()))
    async with transaction(sessions) as session:
        assert await recorder.record(session, replace(PAUSE, finding_fingerprint="manual")) is None
    async with sessions() as session:
        (event,) = await list_events(session)
    assert event.kind is TimelineKind.AUDIT and event.data["action"] == "action.intent"


async def test_the_running_consumer_records_published_actions(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = IncidentService(FakeClock())
    incident_id = await _incident(sessions, service)
    bus = InProcessBus()
    changes = bus.subscribe(Topics.INCIDENTS, "test")
    consumer = ActionConsumer(sessions, bus, ActionRecorder(service))
    consumer.start()
    try:
        await bus.publish(Topics.ACTIONS, "not an action event")  # ignored, logged
        await bus.publish(Topics.ACTIONS, replace(PAUSE, step=ActionStep.CONFIRMED))
        change = await anext(changes)
    finally:
        await consumer.close()
        await bus.close()
    assert change == IncidentChange(incident_id, "state", "contained")
