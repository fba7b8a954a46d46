"""Notifications end to end against a real local HTTP receiver: retries, dedup log, signing, secrets."""

from __future__ import annotations

import io
import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.bus import InProcessBus
from breakglass.config.alerting import NotificationsConfig
from breakglass.domain import Severity
from breakglass.errors import NotifyError
from breakglass.incidents.models import IncidentChange, IncidentState
from breakglass.incidents.service import IncidentService
from breakglass.logs import configure_logging
from breakglass.notify.dispatch import NotificationDispatcher
from breakglass.notify.message import notice_for
from breakglass.notify.models import NotificationLog
from breakglass.notify.service import Notifier
from breakglass.notify.webhook import verify
from breakglass.store.outbox import transaction
from breakglass.testing import FakeClock, HttpReceiver, RecordingChannel, eventually, make_finding
from breakglass.timeline import TimelineKind, list_events

SECRET = "whsec-0123456789abcdef"
TOKEN = "T0KEN-in-the-path-0123456789"


def _config(receiver: HttpReceiver, **extra: object) -> NotificationsConfig:
    return NotificationsConfig.model_validate({
        "backoff": 0.01,
        "channels": [
            {"name": "soc", "kind": "webhook", "url": f"{receiver.url}/soc/{TOKEN}", "secret": SECRET},
            {"name": "ops", "url": receiver.url.replace("http://", "json://") + "/ops", "template": "short"},
            {"name": "pager", "kind": "webhook", "url": f"{receiver.url}/pager", "min_severity": "critical"},
        ],
        "templates": [{"name": "short", "title": "{{ incident.id }}", "body": "{{ event }}"}],
        **extra,
    })  # fmt: skip


async def _incident(sessions: async_sessionmaker[AsyncSession], service: IncidentService) -> str:
    async with transaction(sessions) as session:
        attached = await service.attach_finding(session, make_finding(), group_key="g",
                                                group_labels={}, window_ms=1000)  # fmt: skip
        attached.incident.receivers = ["soc", "ops", "pager"]
    return attached.incident.id


async def _log(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str, int]]:
    async with sessions() as session:
        rows = (await session.scalars(select(NotificationLog).order_by(NotificationLog.id))).all()
    return [(r.channel, r.event, r.status, r.attempts) for r in rows]


async def test_an_opened_incident_is_announced_once_per_channel_and_signed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = IncidentService(clock, protocol="perp")
    incident_id = await _incident(sessions, service)
    with HttpReceiver() as receiver:
        notifier = Notifier.from_config(_config(receiver), sessions, clock)
        dispatcher = NotificationDispatcher(sessions, InProcessBus(), notifier)
        first = await dispatcher.handle(IncidentChange(incident_id, "opened"))
        again = await dispatcher.handle(IncidentChange(incident_id, "opened"))  # a restart, a redelivery
        quiet = await dispatcher.handle(IncidentChange(incident_id, "updated"))
        await notifier.close()
    assert first == {"soc": "sent", "ops": "sent", "pager": "below_severity"}
    assert again == {"soc": "duplicate", "ops": "duplicate", "pager": "below_severity"} and quiet == {}
    by_path = {r.path.split("/")[1]: r for r in receiver.requests}
    assert sorted(by_path) == ["ops", "soc"] and len(receiver.requests) == 2
    soc = by_path["soc"]
    assert verify(SECRET, soc.headers, soc.body)
    payload = json.loads(soc.body)
    assert payload["event"] == "opened" and payload["incident"]["id"] == incident_id
    assert payload["title"].startswith("[HIGH] perp:")
    ops = json.loads(by_path["ops"].body)
    assert (ops["title"], ops["message"]) == (incident_id, "opened")  # the channel's template
    assert await _log(sessions) == [("soc", "opened", "sent", 1), ("ops", "opened", "sent", 1)] or sorted(
        await _log(sessions)
    ) == [("ops", "opened", "sent", 1), ("soc", "opened", "sent", 1)]
    async with sessions() as session:
        notes = await list_events(session, kinds={TimelineKind.NOTIFICATION})
    assert sorted(e.data["channel"] for e in notes) == ["ops", "soc"]


async def test_a_failing_channel_is_retried_with_backoff_and_the_others_still_go(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = IncidentService(clock)
    incident_id = await _incident(sessions, service)
    async with transaction(sessions) as session:
        await service.escalate(session, incident_id, Severity.CRITICAL, actor="test")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with HttpReceiver(statuses=[503, 502]) as receiver:
        notifier = Notifier.from_config(_config(receiver, attempts=4), sessions, clock)
        notifier._sleep = sleep
        notifier.channels = {"pager": notifier.channels["pager"]}
        dispatcher = NotificationDispatcher(sessions, InProcessBus(), notifier)
        outcome = await dispatcher.handle(IncidentChange(incident_id, "escalated", "critical"))
        await notifier.close()
    assert outcome["pager"] == "sent" and outcome["soc"] == "unknown_channel"
    assert [r.path for r in receiver.requests] == ["/pager"] * 3
    assert waits == [0.01, 0.02]
    assert await _log(sessions) == [("pager", "escalated:critical", "sent", 3)]


async def test_a_permanent_failure_is_not_retried_and_is_logged_failed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = IncidentService(clock)
    incident_id = await _incident(sessions, service)
    with HttpReceiver(statuses=[401]) as receiver:
        notifier = Notifier.from_config(_config(receiver), sessions, clock)
        notifier.channels = {"soc": notifier.channels["soc"]}
        outcome = await NotificationDispatcher(sessions, InProcessBus(), notifier).handle(
            IncidentChange(incident_id, "state", "contained")
        )
        await notifier.close()
    assert outcome["soc"] == "failed" and len(receiver.requests) == 1
    assert await _log(sessions) == [("soc", "state:contained", "failed", 1)]


async def test_the_running_dispatcher_pages_on_a_state_change_without_logging_the_url(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    clock = FakeClock()
    service = IncidentService(clock)
    incident_id = await _incident(sessions, service)
    bus = InProcessBus()
    with HttpReceiver(statuses=[500] * 8) as receiver:
        notifier = Notifier.from_config(_config(receiver, attempts=2), sessions, clock)
        notifier.channels = {"soc": notifier.channels["soc"]}
        dispatcher = NotificationDispatcher(sessions, bus, notifier)
        dispatcher.start()
        try:
            async with transaction(sessions, bus) as session:
                await service.transition(session, incident_id, IncidentState.CONTAINED, actor="bot")

            async def logged() -> bool:
                return bool(await _log(sessions))

            await eventually(logged, what="a notification log row")
        finally:
            await notifier.close()
            await dispatcher.close()
            await bus.close()
    assert await _log(sessions) == [("soc", "state:contained", "failed", 2)]
    configure_logging()
    logged = stream.getvalue()
    assert "notify.failed" in logged and TOKEN not in logged and SECRET not in logged


async def test_a_non_recoverable_error_stops_at_once_and_a_recoverable_one_is_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = IncidentService(clock)
    incident_id = await _incident(sessions, service)
    flaky = RecordingChannel("soc", [NotifyError("timeout", recoverable=True)])
    refused = RecordingChannel("ops", [NotifyError("bad token", recoverable=False), NotifyError("x")])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    notifier = Notifier(sessions, {"soc": flaky, "ops": refused}, clock, attempts=3, backoff=1.0, sleep=sleep)
    async with sessions() as session:
        incident = await service.get(session, incident_id)
    outcome = await notifier.notify(notice_for(incident, "opened", ("soc", "ops")))
    await notifier.close()
    assert outcome == {"soc": "sent", "ops": "failed"}
    assert len(flaky.sent) == 1 and refused.sent == [] and waits == [1.0]
    assert flaky.closed and refused.closed
    assert sorted(await _log(sessions)) == [("ops", "opened", "failed", 1), ("soc", "opened", "sent", 2)]
