"""The response ledger: an append-only record of every action step, and the exactly-once claims.

Two tables. ``respond_claims`` holds one row per idempotency key: inserting it *is* the claim, so a
repeated finding or a second process finds the key taken and sends nothing. ``respond_ledger`` holds
the steps (intent, signed with the raw transaction, submitted, replaced, confirmed, refused...); rows
are only ever inserted. A signed transaction is committed here *before* it is broadcast, so a restart
re-broadcasts the very same bytes (same nonce, same hash) instead of signing a second pause.

The ledger commits its own short transactions: durability before the send is its whole point.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Engine,
    Float,
    Integer,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.errors import StoreError
from breakglass.respond.messages import ActionEvent, ActionStep
from breakglass.store.db import Base

__all__ = ["OPEN_STEPS", "ClaimRow", "Ledger", "LedgerRow", "make_hot_engine"]

OPEN_STEPS = frozenset(
    {ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.REPLACED, ActionStep.REORGED}
)
"""Last steps of a guardian action that still needs a broadcast or a receipt after a restart."""


class ClaimRow(Base):
    __tablename__ = "respond_claims"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    playbook: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    executor: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[float] = mapped_column(Float)


class LedgerRow(Base):
    __tablename__ = "respond_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    step: Mapped[str] = mapped_column(String(40))
    playbook: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[str] = mapped_column(String(64))
    monitor_id: Mapped[str] = mapped_column(String(100), default="")
    signer: Mapped[str | None] = mapped_column(String(42), index=True, nullable=True)
    nonce: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    raw_tx: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The signed transaction (public once broadcast; never a key)."""
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at_ms: Mapped[float] = mapped_column(Float)

    def event(self) -> ActionEvent:
        return ActionEvent(
            step=ActionStep(self.step),
            key=self.key,
            playbook=self.playbook,
            action=self.action,
            target=self.target,
            finding_fingerprint=self.fingerprint,
            monitor_id=self.monitor_id,
            tx_hash=self.tx_hash,
            nonce=self.nonce,
            detail=dict(self.detail or {}),
            at_ms=self.at_ms,
        )


# Built once on the tables (not the ORM classes): building an ORM insert costs ~0.7 ms per call.
_INSERT_CLAIM = insert(Base.metadata.tables[ClaimRow.__tablename__])
_INSERT_ROW = insert(Base.metadata.tables[LedgerRow.__tablename__])


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed transaction to record with its step."""

    signer: str
    nonce: int
    tx_hash: str
    raw_tx: bytes


def _values(event: ActionEvent, signed: Signed | None) -> dict[str, Any]:
    return dict(
        key=event.key,
        step=event.step.value,
        playbook=event.playbook,
        action=event.action,
        target=event.target,
        fingerprint=event.finding_fingerprint,
        monitor_id=event.monitor_id,
        signer=signed.signer if signed else None,
        nonce=signed.nonce if signed else event.nonce,
        tx_hash=signed.tx_hash if signed else event.tx_hash,
        raw_tx="0x" + signed.raw_tx.hex() if signed else None,
        detail=dict(event.detail),
        at_ms=event.at_ms or time.time() * 1000,
    )


def make_hot_engine(url: str) -> Engine:
    """A synchronous engine on the store's database, for the one write on the containment hot path.

    Through the async engine the claim costs ~2.5 ms (each statement is a hop to aiosqlite's thread);
    as one synchronous transaction in one worker-thread hop it costs ~0.3 ms (benchmarks/containment.py).
    """
    parsed = make_url(url)
    if parsed.drivername in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        parsed = parsed.set(
            drivername="sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(engine, "connect", pragmas)
    return engine


class Ledger:
    """Claims and steps over one database; every method is one short committed transaction.

    With ``hot`` (``make_hot_engine``), ``claim`` runs as one synchronous transaction in a worker thread.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, hot: Engine | None = None) -> None:
        self._sessions = sessions
        self._hot = hot
        self._claimed: set[str] = set()
        self._loaded = False

    async def claim(
        self, event: ActionEvent, executor: str, *steps: tuple[ActionEvent, Signed | None]
    ) -> bool:
        """Take ``event.key`` and record ``event`` (and ``steps``) atomically. False if already taken."""
        claim = {
            "key": event.key,
            "playbook": event.playbook,
            "action": event.action,
            "target": event.target,
            "executor": executor,
            "fingerprint": event.finding_fingerprint,
            "created_at_ms": event.at_ms or time.time() * 1000,
        }
        rows = [_values(event, None), *(_values(step, signed) for step, signed in steps)]
        if self._hot is not None:
            claimed = await asyncio.to_thread(self._claim_sync, claim, rows)
            self._claimed.add(event.key)
            return claimed
        try:
            # Core inserts, not the ORM unit of work: this commit is on the containment hot path. A
            # colliding key fails the first insert and rolls the whole transaction back.
            async with self._sessions() as session, session.begin():
                await session.execute(_INSERT_CLAIM, [claim])
                await session.execute(_INSERT_ROW, rows)
        except IntegrityError:
            self._claimed.add(event.key)
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"ledger: cannot claim {event.key!r}: {exc}") from exc
        self._claimed.add(event.key)
        return True

    def _claim_sync(self, claim: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
        assert self._hot is not None
        try:
            with self._hot.begin() as conn:
                conn.execute(_INSERT_CLAIM, [claim])
                conn.execute(_INSERT_ROW, rows)
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"ledger: cannot claim {claim['key']!r}: {exc}") from exc
        return True

    async def close(self) -> None:
        if self._hot is not None:
            self._hot.dispose()

    async def load(self) -> None:
        """Remember every claimed key, so that ``is_claimed`` answers from memory on the hot path."""
        async with self._sessions() as session:
            self._claimed.update(await session.scalars(select(ClaimRow.key)))
        self._loaded = True

    async def release(self, event: ActionEvent) -> None:
        """Give ``event.key`` back (nothing was sent under it) and record why, atomically.

        For a claim whose action could not even be started (a Safe proposal the store refused): the
        next finding may try again. Never for a signed transaction: that one may be on its way.
        """
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(delete(ClaimRow).where(ClaimRow.key == event.key))
                await session.execute(_INSERT_ROW, [_values(event, None)])
        except SQLAlchemyError as exc:
            raise StoreError(f"ledger: cannot release {event.key!r}: {exc}") from exc
        self._claimed.discard(event.key)

    async def is_claimed(self, key: str) -> bool:
        """Whether ``key`` was claimed: from memory once ``load()`` ran, else from the database.

        Another process claiming the same key meanwhile is still caught by ``claim``'s insert.
        """
        if key in self._claimed:
            return True
        if self._loaded:
            return False
        async with self._sessions() as session:
            return (await session.get(ClaimRow, key)) is not None

    async def append(self, event: ActionEvent, signed: Signed | None = None) -> None:
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(_INSERT_ROW, [_values(event, signed)])
        except SQLAlchemyError as exc:
            raise StoreError(f"ledger: cannot append {event.step} of {event.key!r}: {exc}") from exc

    async def history(self, key: str) -> list[LedgerRow]:
        async with self._sessions() as session:
            rows = await session.scalars(select(LedgerRow).where(LedgerRow.key == key).order_by(LedgerRow.id))
            return list(rows)

    async def rows(self, *, steps: Sequence[ActionStep] = ()) -> list[LedgerRow]:
        """Every row (of ``steps``), oldest first: the audit trail."""
        query = select(LedgerRow).order_by(LedgerRow.id)
        if steps:
            query = query.where(LedgerRow.step.in_([s.value for s in steps]))
        async with self._sessions() as session:
            return list(await session.scalars(query))

    async def open_keys(self, signer: str) -> list[str]:
        """Keys of ``signer`` whose last step is not final: to re-broadcast or track after a restart."""
        last = (
            select(LedgerRow.key, func.max(LedgerRow.id).label("last"))
            .where(LedgerRow.key.in_(select(LedgerRow.key).where(LedgerRow.signer == signer)))
            .group_by(LedgerRow.key)
            .subquery()
        )
        query = select(LedgerRow).join(last, LedgerRow.id == last.c.last).order_by(LedgerRow.id)
        async with self._sessions() as session:
            rows = await session.scalars(query)
            return [r.key for r in rows if ActionStep(r.step) in OPEN_STEPS]

    async def next_nonce(self, signer: str) -> int | None:
        """One above the highest nonce ``signer`` ever signed with, or None if it never signed."""
        async with self._sessions() as session:
            top = await session.scalar(select(func.max(LedgerRow.nonce)).where(LedgerRow.signer == signer))
        return None if top is None else int(top) + 1
