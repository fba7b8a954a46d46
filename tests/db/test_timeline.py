"""The timeline is a hash chain: tampering behind the application's back is found and located."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.store.outbox import in_transaction, transaction
from breakglass.timeline import (
    GENESIS,
    TimelineEvent,
    TimelineKind,
    append_event,
    event_hash,
    list_events,
    record_audit,
    verify_chain,
)


async def _append(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    async with transaction(sessions) as session:
        for i in range(count):
            await append_event(session, kind=TimelineKind.NOTE, actor="alice", at=1000 + i,
                               data={"text": f"note {i}", "n": i}, incident_id="inc-1")  # fmt: skip


async def test_an_untouched_chain_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _append(sessions, 5)
    async with transaction(sessions) as session:
        await record_audit(session, actor="api:admin", action="token.create", at=2000, target="token:ci")
    async with sessions() as session:
        report = await verify_chain(session)
        events = await list_events(session)
    assert report.ok and report.checked == 6
    assert report.head_hash == events[-1].hash
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[-1].kind is TimelineKind.AUDIT and events[-1].data["action"] == "token.create"


async def test_an_empty_chain_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        report = await verify_chain(session)
    assert report.ok and report.checked == 0 and report.head_hash == GENESIS


async def test_a_row_edited_with_raw_sql_is_named_by_verify(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _append(sessions, 5)
    async with sessions.begin() as session:
        await session.execute(text("UPDATE timeline_events SET actor = 'mallory' WHERE seq = 3"))
    async with sessions() as session:
        report = await verify_chain(session)
    assert not report.ok
    assert (report.bad_seq, report.checked) == (3, 2)
    assert report.reason == "content does not match its hash"


async def test_a_row_whose_data_and_hash_were_both_rewritten_breaks_the_next_link(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _append(sessions, 4)
    async with sessions.begin() as session:
        row = await session.get(TimelineEvent, 2)
        assert row is not None
        # A careful forger recomputes row 2's own hash; row 3 still points at the old one.
        data = {"text": "nothing happened", "n": 1}
        await session.execute(
            text("UPDATE timeline_events SET data = :data, hash = :hash WHERE seq = 2"),
            {"data": '{"n":1,"text":"nothing happened"}',
             "hash": event_hash(2, row.incident_id, row.kind, row.actor, row.at, data, row.prev_hash)},
        )  # fmt: skip
    async with sessions() as session:
        report = await verify_chain(session)
    assert (report.bad_seq, report.reason) == (3, "prev_hash does not match the row before")


async def test_a_deleted_row_is_reported_missing(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _append(sessions, 4)
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM timeline_events WHERE seq = 2"))
    async with sessions() as session:
        report = await verify_chain(session)
    assert (report.bad_seq, report.reason) == (2, "row 2 is missing")


async def test_the_chain_cannot_fork(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _append(sessions, 1)  # row 1 links to GENESIS; a second row claiming that link is refused
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            session.add(TimelineEvent(seq=99, incident_id=None, kind="note", actor="x", at=1,
                                      data={}, prev_hash=GENESIS, hash="f" * 64))  # fmt: skip


async def test_events_are_listed_per_incident_kind_and_page(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _append(sessions, 3)
    async with transaction(sessions) as session:
        await append_event(session, kind=TimelineKind.ACTION, actor="responder", at=5,
                           data={"step": "intent"}, incident_id="inc-2")  # fmt: skip
    async with sessions() as session:
        assert [e.seq for e in await list_events(session, incident_id="inc-1", after_seq=1)] == [2, 3]
        actions = await list_events(session, kinds={TimelineKind.ACTION})
    assert [(e.incident_id, e.data["step"]) for e in actions] == [("inc-2", "intent")]


async def test_rows_cut_off_the_end_are_reported_against_the_head(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _append(sessions, 4)
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM timeline_events WHERE seq >= 3"))
    async with sessions() as session:
        report = await verify_chain(session)
    assert (report.bad_seq, report.reason) == (3, "rows 3..4 are missing (the head says 4)")


async def test_concurrent_appenders_queue_instead_of_forking(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def one(i: int) -> None:
        async with transaction(sessions) as session:
            await append_event(session, kind=TimelineKind.NOTE, actor=f"writer-{i}", at=i,
                               data={"i": i})  # fmt: skip

    await asyncio.gather(*(one(i) for i in range(12)))
    async with sessions() as session:
        report = await verify_chain(session)
        actors = {e.actor for e in await list_events(session)}
    assert report.ok and report.checked == 12 and len(actors) == 12


async def test_a_unit_of_work_that_lost_a_race_is_rerun_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _append(sessions, 1)
    attempts: list[int] = []

    async def work(session: AsyncSession) -> int:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:  # play the loser: link to the head another writer already took
            session.add(TimelineEvent(seq=2, incident_id=None, kind="note", actor="x", at=1,
                                      data={}, prev_hash=GENESIS, hash="e" * 64))  # fmt: skip
            await session.flush()
        return (await append_event(session, kind=TimelineKind.NOTE, actor="y", at=2, data={})).seq

    assert await in_transaction(sessions, None, work) == 2
    async with sessions() as session:
        report = await verify_chain(session)
    assert attempts == [1, 2] and report.ok and report.checked == 2
