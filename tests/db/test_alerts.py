"""The alert pipeline on a real database: dedup, grouping, silences, inhibition, routing, retraction."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.alerts.models import AlertRow, Tombstone
from breakglass.alerts.pipeline import build_pipeline
from breakglass.alerts.service import AlertService
from breakglass.alerts.silence import SilenceService
from breakglass.alerts.tombstones import HORIZON_MS
from breakglass.bus import InProcessBus, Topics
from breakglass.chain.checkpoint import Checkpoint
from breakglass.config.alerting import AlertingConfig
from breakglass.detect.engine import DetectionEngine
from breakglass.domain import Block, Finding, Hash32, Severity
from breakglass.incidents.models import Incident, IncidentFinding
from breakglass.incidents.service import IncidentService
from breakglass.messages.findings import Retraction
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.outbox import transaction
from breakglass.testing import FakeClock, eventually, make_finding
from breakglass.timeline import TimelineKind, list_events

CONFIG: dict[str, Any] = {
    "group_window": 600,
    "incident_min_severity": "medium",
    "routes": [
        {"matchers": ["severity>=critical"], "receivers": ["pager"], "continue": True},
        {"matchers": ["severity>=medium"], "receivers": ["slack"]},
    ],
    "inhibit_rules": [
        {"name": "venue-paused", "source": ["monitor=venue-paused"], "target": ["kind=liquidation"],
         "equal": ["protocol"]},
    ],
}  # fmt: skip


def _service(sessions: async_sessionmaker[AsyncSession], clock: FakeClock, bus: Any = None) -> AlertService:
    config = AlertingConfig.model_validate(CONFIG)
    pipeline = build_pipeline(config, IncidentService(clock, protocol="perp"))
    return AlertService(sessions, bus or InProcessBus(), pipeline, clock, default_labels={"protocol": "perp"})


async def _alerts(sessions: async_sessionmaker[AsyncSession]) -> list[AlertRow]:
    async with sessions() as session:
        return list((await session.scalars(select(AlertRow).order_by(AlertRow.id))).all())


async def _incidents(sessions: async_sessionmaker[AsyncSession]) -> list[Incident]:
    async with sessions() as session:
        return list((await session.scalars(select(Incident).order_by(Incident.created_at))).all())


async def test_a_repeated_finding_is_one_alert_counted_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = _service(sessions, FakeClock())
    finding = make_finding(tx_hash="0x" + "ab" * 32)
    first = await service.process([finding])
    second = await service.process([finding])
    (alert,) = await _alerts(sessions)
    (incident,) = await _incidents(sessions)
    assert len(first) == 1 and second == []
    assert alert.count == 2 and alert.incident_id == incident.id and incident.alert_count == 1


async def test_alerts_of_one_group_within_the_window_share_an_incident(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = _service(sessions, clock)
    oracle = {"group": "oracle"}
    await service.process([make_finding("a", block=1, labels=oracle)])
    clock.advance(300)
    await service.process([make_finding("b", block=2, labels=oracle, severity=Severity.CRITICAL)])
    await service.process([make_finding("c", block=2, labels={"group": "flows"})])
    clock.advance(601)  # past the window after the last oracle alert: a new incident
    await service.process([make_finding("d", block=3, labels=oracle)])
    incidents = await _incidents(sessions)
    assert [i.alert_count for i in incidents] == [2, 1, 1]
    first = incidents[0]
    assert first.group_labels == {"protocol": "perp", "group": "oracle"}
    assert first.severity == Severity.CRITICAL and first.title == "b at block 2"  # escalated
    assert sorted(first.receivers) == ["pager", "slack"]


async def test_an_alert_below_the_incident_threshold_opens_no_incident(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = _service(sessions, FakeClock())
    await service.process([make_finding(severity=Severity.LOW)])
    (alert,) = await _alerts(sessions)
    assert alert.status == "active" and alert.incident_id is None and alert.receivers == []
    assert await _incidents(sessions) == []


async def test_a_silence_mutes_matching_alerts_until_it_expires(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = _service(sessions, clock)
    silences = SilenceService(clock)
    async with transaction(sessions) as session:
        an_hour_later = clock.now + 3_600_000
        silence = await silences.create(session, matchers=["market=ETH"], created_by="alice",
                                        comment="oracle migration", ends_at=an_hour_later)  # fmt: skip
    await service.process([make_finding(block=1, labels={"market": "ETH"})])
    await service.process([make_finding(block=1, labels={"market": "BTC"})])
    async with transaction(sessions) as session:
        await silences.expire(session, silence.id, actor="alice")
        assert await silences.list(session, active_only=True) == []
    clock.advance(1)
    await service.process([make_finding(block=2, labels={"market": "ETH"})])
    alerts = await _alerts(sessions)
    assert [(a.labels["market"], a.status, a.muted_by) for a in alerts] == [
        ("ETH", "muted", f"silence:{silence.id}"),
        ("BTC", "active", None),
        ("ETH", "active", None),
    ]
    assert alerts[0].incident_id is None
    async with sessions() as session:
        audit = await list_events(session, kinds={TimelineKind.AUDIT})
    assert [e.data["action"] for e in audit] == ["silence.create", "silence.expire"]


async def test_a_paused_venue_inhibits_the_liquidation_alerts_that_follow(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = _service(sessions, clock)
    liquidation = {"kind": "liquidation", "group": "liquidations"}
    await service.process([make_finding("liquidations", block=1, labels=liquidation)])  # before
    await service.process([make_finding("venue-paused", block=2, severity=Severity.CRITICAL)])
    await service.process([make_finding("liquidations", block=3, labels=liquidation)])
    other = {**liquidation, "protocol": "other-venue"}  # ``equal: [protocol]`` differs
    await service.process([make_finding("liquidations", block=4, labels=other)])
    states = [(a.monitor_id, a.block_number, a.status, a.muted_by) for a in await _alerts(sessions)]
    assert states == [
        ("liquidations", 1, "active", None),
        ("venue-paused", 2, "active", None),
        ("liquidations", 3, "muted", "inhibit:venue-paused"),
        ("liquidations", 4, "active", None),
    ]


async def test_a_retracted_source_inhibits_nothing_and_retraction_never_deletes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    service = _service(sessions, clock)
    paused = make_finding("venue-paused", block=2, block_hash="0x" + "11" * 32)
    await service.process([paused])
    assert await service.retract({"not": "a retraction"}) == 0
    assert await service.retract(type("Orphaned", (), {"hash": "0x" + "11" * 32})()) == 1
    assert await service.retract(paused) == 0  # already retracted
    await service.process([make_finding("liquidations", block=3, labels={"kind": "liquidation"})])
    alerts = await _alerts(sessions)
    assert [(a.monitor_id, a.status) for a in alerts] == [("venue-paused", "retracted"),
                                                          ("liquidations", "active")]  # fmt: skip
    async with sessions() as session:
        events = await list_events(session, incident_id=alerts[0].incident_id)
    retractions = [e.data for e in events if e.kind is TimelineKind.FINDING and "retracted" in e.data]
    assert [r["fingerprint"] for r in retractions] == [paused.fingerprint]


async def test_the_running_stage_turns_published_findings_into_incidents(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = InProcessBus()
    changes = bus.subscribe(Topics.INCIDENTS, "test")
    service = _service(sessions, FakeClock(), bus)
    service.start()
    try:
        finding = make_finding(block_hash="0x" + "22" * 32)
        await bus.publish(Topics.FINDINGS, finding)
        opened = await anext(changes)
        await bus.publish(Topics.RETRACTIONS, finding.fingerprint)

        async def retracted() -> bool:
            return [a.status for a in await _alerts(sessions)] == ["retracted"]

        await eventually(retracted)
    finally:
        await service.close()
        await bus.close()
    (incident,) = await _incidents(sessions)
    assert opened.change == "opened" and opened.incident_id == incident.id


async def test_a_silence_needs_valid_matchers_a_reason_and_a_future_end(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FakeClock()
    silences = SilenceService(clock)
    later = clock.now + 60_000
    cases = [
        (["market=~("], "why", later, "bad regular expression"),
        ([], "why", later, "at least one matcher"),
        (["market=ETH"], "  ", later, "comment saying why"),
        (["market=ETH"], "why", clock.now, "end after it starts"),
    ]
    for matchers, comment, ends_at, message in cases:
        with pytest.raises(ValueError, match=message):
            async with transaction(sessions) as session:
                await silences.create(session, matchers=matchers, created_by="alice", comment=comment,
                                      ends_at=ends_at)  # fmt: skip
    async with sessions() as session:
        assert await silences.list(session) == []


async def test_a_flip_flop_reorg_sets_each_retracted_alert_aside_under_its_own_name(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The chain goes A -> B -> A -> B between two branches, both raising F on their block 8. The
    # retracted alert of A's block is set aside twice; the second rename used to take the first's
    # name (``F~<hA12>``, unique): an IntegrityError in the alert stage. Times as the engine stamps
    # them: each raise observed after the retraction of its block's previous turn (a retraction of
    # unknown time would retract a later raise of its block too, as it does a stored one).
    clock = FakeClock()
    service = _service(sessions, clock)
    on_a, on_b = "0x" + "aa" * 32, "0x" + "bb" * 32
    for i, block_hash in enumerate((on_a, on_b, on_a, on_b)):
        if i:  # the reorg orphans the block the previous branch raised F on
            orphaned = Retraction(31337, 8, (on_b, on_a)[i % 2], (), at_ms=2_000 * i)
            assert await service.retract(orphaned) == 1
        clock.advance(1)
        assert len(await service.process([_seen(2_000 * i + 1_000, block_hash)])) == 1
    alerts = await _alerts(sessions)
    fp = make_finding("drain", block=8).fingerprint
    assert [(a.fingerprint, a.block_hash, a.status) for a in alerts] == [
        (f"{fp}~{'aa' * 6}", on_a, "retracted"),
        (f"{fp}~{'bb' * 6}", on_b, "retracted"),
        (f"{fp}~{'aa' * 6}~{alerts[2].id}", on_a, "retracted"),
        (fp, on_b, "active"),
    ]
    async with sessions() as session:
        links = set((await session.scalars(select(IncidentFinding.fingerprint))).all())
    assert links == {a.fingerprint for a in alerts}  # each alert's incident link renamed with it


def _seen(at_ms: float, block_hash: str) -> Finding:
    """F of block 8 as the engine observed it at ``at_ms`` (its clock) on the block ``block_hash``."""
    return dataclasses.replace(make_finding("drain", block=8, block_hash=block_hash), observed_at_ms=at_ms)


async def test_a_finding_of_a_block_canonical_again_after_its_retraction_is_a_live_alert_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A raises F on block 8, the reorg to B retracts it, B does not raise F, the chain goes back to A
    # and the engine handles A's block 8 again (same hash): F again, observed after the retraction.
    # It used to count as a repeat of the retracted alert: a breach on a canonical block never alerted.
    clock = FakeClock()
    service = _service(sessions, clock)
    on_a = "0x" + "aa" * 32
    assert len(await service.process([_seen(1_000, on_a)])) == 1
    assert await service.retract(Retraction(31337, 8, on_a, (_seen(0, on_a).fingerprint,), at_ms=2_000)) == 1
    # the bus is at least once: the first raise delivered again is a repeat, the alert stays retracted
    assert await service.process([_seen(1_000, on_a)]) == []
    (alert,) = await _alerts(sessions)
    assert (alert.status, alert.count) == ("retracted", 2)
    clock.advance(5)
    again = await service.process([_seen(3_000, on_a)])
    assert len(again) == 1 and again[0].incident is not None  # through the whole pipeline
    fp = _seen(0, on_a).fingerprint
    alerts = await _alerts(sessions)
    assert [(a.fingerprint, a.block_hash, a.status, a.count) for a in alerts] == [
        (f"{fp}~{'aa' * 6}", on_a, "retracted", 2),  # the record of the retraction, kept
        (fp, on_a, "active", 1),
    ]
    async with sessions() as session:
        events = await list_events(session, incident_id=alerts[1].incident_id)
    findings = [e.data for e in events if e.kind is TimelineKind.FINDING]
    assert [("retracted" in d, d["fingerprint"]) for d in findings] == [(False, fp), (True, fp), (False, fp)]
    # the retraction delivered again (at least once) is older than the raise: the alert stays live
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=2_000)) == 0


async def test_a_retraction_made_before_its_block_was_raised_again_retracts_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Findings and retractions come on two topics, in order within each only: A's block raised
    # again (observed at 3000, the chain back on A) can be handled before the retraction the engine
    # made at 2000, when the reorg to B orphaned it. That retraction is stale: the alert stays live.
    service = _service(sessions, FakeClock())
    on_a = "0x" + "aa" * 32
    assert len(await service.process([_seen(1_000, on_a)])) == 1
    assert await service.process([_seen(3_000, on_a)]) == []  # a repeat of the live alert
    assert await service.retract(Retraction(31337, 8, on_a, (_seen(0, on_a).fingerprint,), at_ms=2_000)) == 0
    assert [(a.status, a.count) for a in await _alerts(sessions)] == [("active", 2)]
    # a later reorg orphaning A's block again retracts it
    assert await service.retract(Retraction(31337, 8, on_a, (), at_ms=4_000)) == 1
    (alert,) = await _alerts(sessions)
    assert (alert.status, alert.retraction_at_ms) == ("retracted", 4_000)


class _DrainOn:
    """Raises F on block 8 of the branch ``on`` only (the engine's real clock stamps it)."""

    monitor_id = "drain"

    def __init__(self, on: str) -> None:
        self.on = on

    def reads(self) -> list[Any]:
        return []

    def on_block(self, ctx: Any) -> list[Finding]:
        if ctx.block.number != 8 or ctx.block.hash != self.on:
            return []
        found = make_finding("drain", block=8, block_hash=ctx.block.hash)
        return [dataclasses.replace(found, observed_at_ms=ctx.observed_at_ms)]


async def test_the_engine_and_the_alert_stage_alert_again_when_the_chain_goes_back_to_a_branch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # End to end over the in-process bus with the engine's own clock: A -> B -> A, only A raises F.
    on_a, on_b = "0x" + "aa" * 32, "0x" + "bb" * 32
    bus = InProcessBus()
    service = _service(sessions, FakeClock(), bus)
    engine = DetectionEngine([_DrainOn(on_a)], chain_id=31337, contracts={}, executor=None, bus=bus)  # type: ignore[arg-type]
    service.start()

    def block_8(block_hash: str) -> Block:
        return Block(8, Hash32(block_hash), Hash32("0x" + "07" * 32), 96, 1, ())

    async def statuses(*expected: tuple[str, str]) -> None:
        async def seen() -> bool:
            return [(a.block_hash, a.status) for a in await _alerts(sessions)] == list(expected)

        await eventually(seen, what=f"alerts {expected}")

    try:
        assert await engine.on_block(block_8(on_a)) == 1
        await statuses((on_a, "active"))
        await engine.on_reorg([Checkpoint(8, on_a)])
        await statuses((on_a, "retracted"))
        assert await engine.on_block(block_8(on_b)) == 0
        await engine.on_reorg([Checkpoint(8, on_b)])
        assert await engine.on_block(block_8(on_a)) == 1  # A's block 8 canonical again
        await statuses((on_a, "retracted"), (on_a, "active"))
    finally:
        await service.close()
        await bus.close()


# A retraction handled before the finding it retracts (two topics, ordered only within each): what
# it named is recorded (``alerts/tombstones.py``) and the finding is stored retracted, not paged.


async def test_a_finding_handled_after_its_retraction_is_stored_retracted_and_pages_nobody(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A raises F on block 8 (observed at 1000), the reorg to B retracts A's block 8 (at 2000), and the
    # retraction is handled first. It used to retract nothing, and F became a live alert and an
    # incident (a page) for a block no longer on the chain.
    clock = FakeClock()
    bus = InProcessBus()
    alerts, incidents = bus.subscribe(Topics.ALERTS, "test"), bus.subscribe(Topics.INCIDENTS, "test")
    service = _service(sessions, clock, bus)
    on_a = "0x" + "aa" * 32
    fp = _seen(0, on_a).fingerprint
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=2_000)) == 0
    clock.advance(5)
    assert await service.process([_seen(1_000, on_a)]) == []  # reached no incident
    (alert,) = await _alerts(sessions)  # stored all the same: nothing lost, an operator sees it
    assert (alert.fingerprint, alert.status, alert.count) == (fp, "retracted", 1)
    assert (alert.retracted_at, alert.retraction_at_ms, alert.observed_at_ms) == (clock.now, 2_000, 1_000)
    assert (alert.incident_id, alert.receivers, alert.muted_by) == (None, [], None)  # not routed
    assert await _incidents(sessions) == []
    lag = await bus.lag()
    assert (lag[(Topics.ALERTS, "test")], lag[(Topics.INCIDENTS, "test")]) == (1, 0)  # nobody notified
    change = await anext(alerts)
    assert (change.fingerprint, change.status, change.incident_id) == (fp, "retracted", None)
    # the bus is at least once: the finding delivered again is a repeat, still retracted
    assert await service.process([_seen(1_000, on_a)]) == []
    assert [(a.status, a.count) for a in await _alerts(sessions)] == [("retracted", 2)]
    await incidents.aclose()  # type: ignore[attr-defined]
    await alerts.aclose()  # type: ignore[attr-defined]
    await bus.close()


async def test_a_finding_observed_after_a_retraction_handled_first_is_live(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The flip-flop with the retraction handled first: A's block 8 retracted at 2000 (the reorg to B),
    # then, on the findings topic, F as raised before (observed at 1000) and F raised again when the
    # chain came back to A (observed at 3000), and another monitor's finding of that block at 3000.
    service = _service(sessions, FakeClock())
    on_a = "0x" + "aa" * 32
    fp = _seen(0, on_a).fingerprint
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=2_000)) == 0
    assert await service.process([_seen(1_000, on_a)]) == []  # the orphaned raise: retracted
    again = await service.process([_seen(3_000, on_a)])
    assert len(again) == 1 and again[0].incident is not None  # canonical again: live, in an incident
    other = dataclasses.replace(make_finding("oracle", block=8, block_hash=on_a), observed_at_ms=3_000)
    assert len(await service.process([other])) == 1
    alerts = await _alerts(sessions)
    assert [(a.fingerprint, a.status) for a in alerts] == [
        (f"{fp}~{'aa' * 6}", "retracted"),  # set aside, as any retracted alert raised again
        (fp, "active"),
        (other.fingerprint, "active"),
    ]
    # the retraction delivered again is older than the raises: they stay live
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=2_000)) == 0
    assert [a.status for a in await _alerts(sessions)] == ["retracted", "active", "active"]


async def test_a_retraction_naming_fingerprints_only_retracts_its_findings_still_to_come(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    service = _service(sessions, FakeClock())
    on_a, on_b = "0x" + "aa" * 32, "0x" + "bb" * 32
    fp = _seen(0, on_a).fingerprint
    withdrawn = make_finding("withdrawn", block=9, block_hash=on_b)
    assert await service.retract(Retraction(31337, 8, "", (fp,), at_ms=2_000)) == 0  # no block named
    assert await service.retract(withdrawn.fingerprint) == 0  # a detector withdrew it: time unknown
    assert await service.process([_seen(1_000, on_a)]) == []
    other = dataclasses.replace(make_finding("oracle", block=8, block_hash=on_a), observed_at_ms=1_000)
    assert len(await service.process([other])) == 1  # its block is not retracted, only F
    assert await service.process([dataclasses.replace(withdrawn, observed_at_ms=5_000)]) == []
    # F raised on the new branch's block 8 after the retraction was made: live
    assert len(await service.process([_seen(3_000, on_b)])) == 1
    alerts = await _alerts(sessions)
    assert [(a.monitor_id, a.block_hash, a.status, a.retraction_at_ms) for a in alerts] == [
        ("drain", on_a, "retracted", 2_000),
        ("oracle", on_a, "active", None),
        ("withdrawn", on_b, "retracted", None),
        ("drain", on_b, "active", None),
    ]


async def test_what_a_retraction_named_survives_a_restart_and_is_pruned_after_a_day(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = FakeClock()
    on_a, on_b = "0x" + "aa" * 32, "0x" + "bb" * 32
    fp = _seen(0, on_a).fingerprint
    service = _service(sessions, clock)
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=2_000)) == 0
    assert await service.retract(Retraction(31337, 8, on_a, (fp,), at_ms=1_500)) == 0  # older: kept 2000
    assert await service.retract(type("Orphaned", (), {"hash": on_b})()) == 0  # time unknown
    assert await service.retract(Retraction(31337, 9, on_b, (), at_ms=9_000)) == 0  # unknown stays
    clock.advance(60)
    engine = make_engine(migrated_url)  # the alert stage restarted: a new store on the same database
    try:
        restarted = _service(make_sessionmaker(engine), clock)
        assert await restarted.process([_seen(1_900, on_a)]) == []
        on_b_late = dataclasses.replace(
            make_finding("oracle", block=9, block_hash=on_b), observed_at_ms=50_000
        )
        assert await restarted.process([on_b_late]) == []
        assert [(a.status, a.retraction_at_ms) for a in await _alerts(sessions)] == [
            ("retracted", 2_000),
            ("retracted", None),
        ]
        async with sessions() as session:
            tombstones = (await session.scalars(select(Tombstone).order_by(Tombstone.key))).all()
        assert [(t.kind, t.key, t.at_ms) for t in tombstones] == [
            ("block", on_a, 2_000), ("block", on_b, None), ("fingerprint", fp, 2_000)
        ]  # fmt: skip
        clock.advance(HORIZON_MS / 1000)  # a day after the last: pruned when the next is recorded
        assert await restarted.retract(Retraction(31337, 10, "0x" + "cc" * 32, (), at_ms=99_000)) == 0
        async with sessions() as session:
            assert list((await session.scalars(select(Tombstone.key))).all()) == ["0x" + "cc" * 32]
    finally:
        await engine.dispose()


async def test_the_running_stage_retracts_a_finding_whose_retraction_it_consumed_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = InProcessBus()
    incidents = bus.subscribe(Topics.INCIDENTS, "test")
    service = _service(sessions, FakeClock(), bus)
    service.start()
    on_a = "0x" + "aa" * 32
    try:
        await bus.publish(Topics.RETRACTIONS, Retraction(31337, 8, on_a, (), at_ms=2_000))
        await bus.settled(Topics.RETRACTIONS)
        await bus.publish(Topics.FINDINGS, _seen(1_000, on_a))
        await bus.settled(Topics.FINDINGS)
    finally:
        await service.close()
        await bus.close()
    assert [(a.block_hash, a.status) for a in await _alerts(sessions)] == [(on_a, "retracted")]
    assert await _incidents(sessions) == [] and [m async for m in incidents] == []
