"""The timeline: typed, append-only, hash-chained events; the incidents' history and the audit log.

Every row's ``hash`` is SHA-256 over its content and the previous row's hash, so editing, deleting or
reordering any row behind the application's back breaks the chain at that row (``verify_chain``).
One chain spans all incidents and the API's audit events; ``prev_hash`` is unique, so two writers
can never fork it, and appenders serialise on the ``timeline_head`` row, which also records the head.
Appended entries are queued on the session's outbox and published on ``Topics.TIMELINE`` after commit.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.bus import Topics
from breakglass.messages.incidents import TimelineEntry, TimelineKind
from breakglass.store.db import Base
from breakglass.store.outbox import enqueue

__all__ = [
    "GENESIS",
    "ChainReport",
    "TimelineEntry",
    "TimelineEvent",
    "TimelineHead",
    "TimelineKind",
    "append_event",
    "canonical_json",
    "event_hash",
    "list_events",
    "record_audit",
    "verify_chain",
]

GENESIS = "0" * 64


class TimelineEvent(Base):
    __tablename__ = "timeline_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    incident_id: Mapped[str | None] = mapped_column(String(32), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_timeline_events_incident", "incident_id", "seq"),)

    def entry(self) -> TimelineEntry:
        return TimelineEntry(
            self.seq, self.incident_id, TimelineKind(self.kind), self.actor, self.at,
            dict(self.data), self.hash,
        )  # fmt: skip


class TimelineHead(Base):
    """One row: the chain's newest (seq, hash). Appenders lock it; ``verify_chain`` compares the
    chain's end with it, so rows cut off the end are noticed too."""

    __tablename__ = "timeline_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, bytes as 0x-hex, enums as values: one text per value, always."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(
    seq: int, incident_id: str | None, kind: str, actor: str, at: int, data: Any, prev_hash: str
) -> str:
    blob = canonical_json([seq, incident_id, kind, actor, at, data, prev_hash])
    return hashlib.sha256(blob.encode()).hexdigest()


async def _lock_head(session: AsyncSession) -> tuple[int, str]:
    """Take the chain's write lock and return its head (seq, hash).

    The lock is a write to the one ``timeline_head`` row: on PostgreSQL a row lock, on SQLite the
    database's write lock, both held until commit. So concurrent appenders (the pipeline, the
    notifier, the API, other processes) queue up instead of forking the chain.
    """
    locked = await session.execute(
        update(TimelineHead).where(TimelineHead.id == 1).values(seq=TimelineHead.seq)
    )
    if getattr(locked, "rowcount", 1) == 0:  # a database whose head row was removed: recreate it
        session.add(TimelineHead(id=1, seq=0, hash=GENESIS))
        await session.flush()
    row = (
        await session.execute(
            select(TimelineEvent.seq, TimelineEvent.hash).order_by(TimelineEvent.seq.desc()).limit(1)
        )
    ).first()
    return (row[0], row[1]) if row else (0, GENESIS)


async def append_event(
    session: AsyncSession,
    *,
    kind: TimelineKind,
    actor: str,
    at: int,
    data: Mapping[str, Any],
    incident_id: str | None = None,
) -> TimelineEntry:
    """Append one event to the chain (flushed, not committed) and queue it for publishing."""
    plain = json.loads(canonical_json(data))  # stored exactly as hashed
    seq, prev = await _lock_head(session)
    seq += 1
    row = TimelineEvent(
        seq=seq, incident_id=incident_id, kind=kind.value, actor=actor, at=at, data=plain,
        prev_hash=prev, hash=event_hash(seq, incident_id, kind.value, actor, at, plain, prev),
    )  # fmt: skip
    session.add(row)
    await session.execute(update(TimelineHead).where(TimelineHead.id == 1).values(seq=seq, hash=row.hash))
    await session.flush()
    entry = row.entry()
    enqueue(session, Topics.TIMELINE, entry)
    return entry


async def record_audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    at: int,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    incident_id: str | None = None,
) -> TimelineEntry:
    """Audit one mutating API call (or CLI command): who did what to which target, chained."""
    data = {"action": action, "target": target, "details": dict(details or {})}
    return await append_event(
        session, kind=TimelineKind.AUDIT, actor=actor, at=at, data=data, incident_id=incident_id
    )


async def list_events(
    session: AsyncSession,
    *,
    incident_id: str | None = None,
    kinds: set[TimelineKind] | None = None,
    after_seq: int = 0,
    limit: int = 1000,
) -> list[TimelineEntry]:
    """Events in chain order; ``after_seq`` pages (and lets a live view catch up after a reconnect)."""
    query = select(TimelineEvent).where(TimelineEvent.seq > after_seq)
    if incident_id is not None:
        query = query.where(TimelineEvent.incident_id == incident_id)
    if kinds:
        query = query.where(TimelineEvent.kind.in_([k.value for k in kinds]))
    rows = (await session.scalars(query.order_by(TimelineEvent.seq).limit(limit))).all()
    return [row.entry() for row in rows]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of ``verify_chain``: ``bad_seq`` names the first row that does not verify."""

    checked: int
    head_hash: str
    bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> ChainReport:
    """Recompute every row's hash in order; stop at the first row that does not match."""
    # The head is read first: rows 1..head.seq were committed with it, so fewer is a truncation,
    # while more only means appenders kept writing while we read.
    head = (await session.execute(select(TimelineHead.seq).where(TimelineHead.id == 1))).scalar()
    prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        rows = (
            await session.execute(
                select(TimelineEvent.__table__)
                .where(TimelineEvent.seq >= expected_seq)
                .order_by(TimelineEvent.seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            if head is not None and head > checked:
                missing = f"rows {checked + 1}..{head} are missing (the head says {head})"
                return ChainReport(checked, prev, checked + 1, missing)
            return ChainReport(checked, prev)
        for row in rows:
            if row.seq != expected_seq:
                return ChainReport(checked, prev, expected_seq, f"row {expected_seq} is missing")
            if row.prev_hash != prev:
                return ChainReport(checked, prev, row.seq, "prev_hash does not match the row before")
            data = json.loads(row.data) if isinstance(row.data, str) else row.data
            actual = event_hash(row.seq, row.incident_id, row.kind, row.actor, row.at, data, prev)
            if actual != row.hash:
                return ChainReport(checked, prev, row.seq, "content does not match its hash")
            prev, expected_seq, checked = row.hash, expected_seq + 1, checked + 1
