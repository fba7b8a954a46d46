"""The response ledger: an append-only record of every action step, and the exactly-once claims.

Two tables. ``respond_claims`` holds one row per idempotency key: inserting it *is* the claim, so a
repeated finding or a second process finds the key taken and sends nothing. ``respond_ledger`` holds
the steps (intent, signed with the raw transaction, submitted, replaced, confirmed, refused...); rows
are only ever inserted. A signed transaction is committed here *before* it is broadcast, so a restart
re-broadcasts the very same bytes (same nonce, same hash) instead of signing a second pause.

The ledger commits its own short transactions: durability before the send is its whole point.
While the store is locked or down, a ledger given a journal (``respond/journal.py``) keeps the claims
and steps in a local, fsynced file instead, and replays them into the store once it takes writes again
(``reconcile``); its reads merge what is still in the journal. Without a journal, a store error is
raised as before.

Fencing (several responder replicas, one active at a time through a lease, ``breakglass.ha``): a
claim made with ``fence=token`` checks, in its own transaction, that no newer fencing token has
claimed the ledger, and records its token as the newest (a reserved claim row, ``FENCE``, locked
``FOR UPDATE``). A claim with an older token raises ``LedgerFenced`` and changes nothing, so a
replica that lost its lease but has not noticed yet (paused, partitioned) signs nothing new: the
decision to send is the claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
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
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import Select

from breakglass.errors import StoreError
from breakglass.logs import get_logger
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.respond.journal import Entry, LedgerJournal
from breakglass.store.db import Base
from breakglass.store.health import StoreHealth, StoreUnavailable, is_unavailable, short_error

__all__ = [
    "FENCE",
    "LOCKED_POLL",
    "OPEN_STEPS",
    "ClaimRow",
    "Ledger",
    "LedgerFenced",
    "LedgerRow",
    "hot_write",
    "make_hot_engine",
]

log = get_logger(__name__)
T = TypeVar("T")
T2 = TypeVar("T2")

OPEN_STEPS = frozenset(
    {ActionStep.INTENT, ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.REPLACED, ActionStep.REORGED}
)
"""Last steps of a guardian action that still needs a broadcast or a receipt after a restart."""

FENCE = ":fence"
"""The reserved ``respond_claims`` key holding the newest fencing token (in ``fingerprint``) that
claimed through this ledger; no idempotency key starts with ``:``."""


class LedgerFenced(StoreError):
    """A claim carried a fencing token older than the newest one: another responder replica holds
    the lease now. Nothing was claimed; this replica must not send."""

    def __init__(self, token: int, newest: int) -> None:
        super().__init__(
            f"ledger claim with fencing token {token} refused: token {newest} claimed since",
            recoverable=False,
        )
        self.token = token
        self.newest = newest


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
    chain_id: Mapped[int | None] = mapped_column(BigInteger, index=True, nullable=True, default=None)
    """The chain the step is on (a ledger of several chains reads only its own chain's rows)."""

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
            chain_id=self.chain_id,
        )


# Built once on the tables (not the ORM classes): building an ORM insert costs ~0.7 ms per call.
_CLAIMS = Base.metadata.tables[ClaimRow.__tablename__]
_INSERT_CLAIM = insert(_CLAIMS)
_INSERT_ROW = insert(Base.metadata.tables[LedgerRow.__tablename__])


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed transaction to record with its step."""

    signer: str
    nonce: int
    tx_hash: str
    raw_tx: bytes


def _values(event: ActionEvent, signed: Signed | None, chain_id: int | None = None) -> dict[str, Any]:
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
        chain_id=event.chain_id if event.chain_id is not None else chain_id,
    )


LOCKED_POLL = 0.001
"""Seconds between tries of a hot-path SQLite write that found the write lock taken. SQLite's own busy
handler sleeps longer and longer between tries (up to 100 ms): while the alert and incident stages
wrote their short transactions one after another, a guardian's claim slept through every gap between
them (138 and 339 ms in two reentrant-aum drills, the keeper's strike landing meanwhile)."""
_HOT_WAIT: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def make_hot_engine(url: str, *, busy_timeout: float = 5.0) -> Engine:
    """A synchronous engine on the store's database, for the one write on the containment hot path.

    Through the async engine the claim costs ~2.5 ms (each statement is a hop to aiosqlite's thread);
    as one synchronous transaction in one worker-thread hop it costs ~0.3 ms (benchmarks/containment.py).
    ``busy_timeout``: seconds a SQLite write waits for another writer's lock (and a PostgreSQL
    connection attempt for the server, at least 2 s) before the store counts as unavailable. On
    SQLite the wait is the ledger's own (``hot_write``: a try every ``LOCKED_POLL``), not SQLite's.
    """
    parsed = make_url(url)
    if parsed.drivername in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        parsed = parsed.set(
            drivername="sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
        )
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(parsed, connect_args={"connect_timeout": max(2, round(busy_timeout))})
        return engine
    engine = create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=0")  # refused at once: hot_write tries again
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(engine, "connect", pragmas)
        _HOT_WAIT[engine] = busy_timeout
    return engine


def hot_write(engine: Engine, work: Callable[[], T]) -> T:
    """``work`` (one whole transaction on ``engine``), tried again every ``LOCKED_POLL`` seconds while
    SQLite answers 'database is locked', for the engine's ``busy_timeout``; then the error is raised
    (the store counts as unavailable). Other engines and errors: ``work`` once."""
    wait = _HOT_WAIT.get(engine)
    if wait is None:
        return work()
    deadline = time.monotonic() + wait
    while True:
        try:
            return work()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(LOCKED_POLL)


class Ledger:
    """Claims and steps over one database; every method is one short committed transaction.

    With ``hot`` (``make_hot_engine``), writes run as one synchronous transaction in a worker thread.
    With ``journal``, a write the store does not take within ``store_timeout`` seconds (or at all, the
    store being known unavailable by ``health``) goes to the journal; until ``reconcile`` has replayed
    the journal into the store, every write goes there too, so the store receives them in order.

    With ``chain_id`` (a deployment of several chains: one responder, one ledger per chain), every row
    written carries it and the reads behind a restart (``rows``, ``open_keys``, ``next_nonce``) see
    that chain's rows only: one guardian key serving two chains has a nonce on each, and a transaction
    signed for one must never be re-broadcast to the other. Keys are global (claims stay exactly-once).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        hot: Engine | None = None,
        journal: LedgerJournal | None = None,
        health: StoreHealth | None = None,
        store_timeout: float = 6.0,
        chain_id: int | None = None,
    ) -> None:
        self.chain_id = chain_id
        self._fence = FENCE if chain_id is None else f"{FENCE}:{chain_id}"
        """The claims row holding the newest fencing token: one per chain (a lease per chain)."""
        self._sessions = sessions
        self._hot = hot
        self._claimed: set[str] = set()
        self._loaded = False
        self._journal = journal
        self._health = health or StoreHealth()
        self._store_timeout = store_timeout
        self._pending: list[Entry] = []
        """Journaled writes the store has not taken yet, oldest first (the journal file's content)."""
        self._journal_lock = asyncio.Lock()
        self._replaying = asyncio.Lock()
        self._retry_at = 0.0
        self._retry_delay = 0.0
        if journal is not None:
            self._health.track("ledger journal", lambda: len(self._pending))

    @property
    def journaling(self) -> bool:
        """Whether writes go to the journal (it holds entries the store has not taken yet)."""
        return bool(self._pending)

    async def claim(
        self,
        event: ActionEvent,
        executor: str,
        *steps: tuple[ActionEvent, Signed | None],
        fence: int | None = None,
    ) -> bool:
        """Take ``event.key`` and record ``event`` (and ``steps``) atomically. False if already taken.
        ``fence``: the claimer's fencing token (``LedgerFenced`` if a newer one claimed since)."""
        claim = {
            "key": event.key,
            "playbook": event.playbook,
            "action": event.action,
            "target": event.target,
            "executor": executor,
            "fingerprint": event.finding_fingerprint,
            "created_at_ms": event.at_ms or time.time() * 1000,
        }
        rows = [
            _values(event, None, self.chain_id),
            *(_values(s, signed, self.chain_id) for s, signed in steps),
        ]
        if not await self._journals("ledger.claim"):
            try:
                claimed = await self._store(
                    "ledger.claim",
                    partial(self._claim_sync, claim, rows, fence),
                    partial(self._claim_async, claim, rows, fence),
                )
            except StoreUnavailable:
                if self._journal is None:
                    raise
            else:
                self._claimed.add(event.key)
                return claimed
        if event.key in self._claimed:  # this process is the one writer of its keys: its memory is whole
            return False
        await self._journal_write(Entry("claim", event.key, rows, claim))
        self._claimed.add(event.key)
        return True

    def _claim_sync(
        self, claim: dict[str, Any], rows: list[dict[str, Any]], fence: int | None = None
    ) -> bool:
        assert self._hot is not None
        if fence is not None:
            self._fence_sync(fence, claim)
        try:
            with self._hot.begin() as conn:
                if fence is not None:
                    _check_fence_sync(conn, fence, self._fence)
                conn.execute(_INSERT_CLAIM, [claim])
                conn.execute(_INSERT_ROW, rows)
        except IntegrityError:
            return False
        return True

    def _fence_sync(self, fence: int, claim: dict[str, Any]) -> None:
        """Make sure the fence row exists (its first insert may race another replica's: either wins)."""
        assert self._hot is not None
        with self._hot.connect() as conn:
            if conn.execute(select(_CLAIMS.c.key).where(_CLAIMS.c.key == self._fence)).first() is not None:
                return
        with contextlib.suppress(IntegrityError), self._hot.begin() as conn:
            conn.execute(_INSERT_CLAIM, [_fence_row(0, claim, self._fence)])

    async def _claim_async(
        self, claim: dict[str, Any], rows: list[dict[str, Any]], fence: int | None = None
    ) -> bool:
        if fence is not None:
            async with self._sessions() as session:
                present = await session.get(ClaimRow, self._fence)
            if present is None:
                with contextlib.suppress(IntegrityError):
                    async with self._sessions() as session, session.begin():
                        await session.execute(_INSERT_CLAIM, [_fence_row(0, claim, self._fence)])
        try:
            # Core inserts, not the ORM unit of work: this commit is on the containment hot path. A
            # colliding key fails the first insert and rolls the whole transaction back.
            async with self._sessions() as session, session.begin():
                if fence is not None:
                    key = self._fence
                    await session.run_sync(lambda sync: _check_fence_sync(sync.connection(), fence, key))
                await session.execute(_INSERT_CLAIM, [claim])
                await session.execute(_INSERT_ROW, rows)
        except IntegrityError:
            return False
        return True

    async def _journals(self, operation: str) -> bool:
        """Whether this write goes straight to the journal: it holds entries not yet replayed (the
        store must get writes in order), or the store is known to be unavailable right now."""
        if self._journal is None:
            return False
        if self._pending:
            return True
        if not self._health.available:
            log.info("respond.journaling", operation=operation, reason="store unavailable")
            return True
        return False

    async def _store(
        self,
        operation: str,
        sync: Callable[[], T],
        run_async: Callable[[], Awaitable[T]],
    ) -> T:
        """One store write (``sync`` on the hot engine, else ``run_async``); ``StoreUnavailable`` when
        the database did not take it (locked, down) within ``store_timeout`` (with a journal)."""
        timeout = self._store_timeout if self._journal is not None else None
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 a cancel reaching wait_for in the loop
            # iteration its write finished in is dropped (gh-86296), and the stopped stage runs on
            async with asyncio.timeout(timeout):
                if self._hot is not None:
                    return await asyncio.to_thread(hot_write, self._hot, sync)
                return await run_async()
        except TimeoutError as exc:
            self._health.failed(operation, exc)
            raise StoreUnavailable(f"ledger: {operation}: no answer within {timeout:g} s") from exc
        except SQLAlchemyError as exc:
            if is_unavailable(exc):
                self._health.failed(operation, exc)
                raise StoreUnavailable(f"ledger: {operation}: {short_error(exc)}") from exc
            raise StoreError(f"ledger: {operation}: {exc}") from exc

    async def _journal_write(self, entry: Entry) -> None:
        assert self._journal is not None
        async with self._journal_lock:
            if not self._pending:
                log.warning("respond.journal_opened", path=str(self._journal.path), key=entry.key)
            await asyncio.to_thread(self._journal.append, entry)
            self._pending.append(entry)

    async def close(self) -> None:
        if self._hot is not None:
            self._hot.dispose()

    async def load(self) -> None:
        """Remember every claimed key (in the store and in the journal), so that ``is_claimed``
        answers from memory on the hot path. A journal left by a previous process stays until
        ``reconcile`` (the responder's poll loop) replays it; until then writes follow it there."""
        if self._journal is not None:
            self._pending = await asyncio.to_thread(self._journal.read)
        try:
            async with self._sessions() as session:
                claimed = set(await session.scalars(select(ClaimRow.key)))
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            self._health.failed("ledger.load", exc)
            raise StoreUnavailable(f"ledger: cannot read the claims: {short_error(exc)}") from exc
        for entry in self._pending:
            if entry.op == "claim":
                claimed.add(entry.key)
            elif entry.op == "release":
                claimed.discard(entry.key)
        claimed -= {k for k in claimed if k.startswith(FENCE)}  # every chain's fence row
        # the store and the journal hold every claim: what another replica claimed (and released)
        # while this one was standing by is read afresh when it takes over
        self._claimed = claimed
        self._loaded = True
        if self._pending:  # a previous process journaled these during an outage: replayed by reconcile()
            path = self._journal.path if self._journal is not None else None
            log.warning("respond.journal_found", entries=len(self._pending), path=str(path))

    async def reconcile(self) -> bool:
        """Replay the journal into the store, oldest entry first; True once it is empty.

        Each entry is one transaction, idempotent (a claim already in the store, or an identical step
        row, is not written again), so a crash or an outage in the middle only means replaying more
        later. Called by the responder's poll loop; backs off while the store is still unavailable."""
        if not self._pending or time.monotonic() < self._retry_at:
            return not self._pending
        async with self._replaying:
            replayed, started = 0, self._health.now()
            while self._pending:
                try:
                    await self._apply(self._pending[0])
                except SQLAlchemyError as exc:
                    if not is_unavailable(exc):
                        raise StoreError(f"ledger: cannot replay the journal: {exc}") from exc
                    self._health.failed("ledger.replay", exc)
                    self._retry_delay = min(max(self._retry_delay * 2, 0.1), 5.0)
                    self._retry_at = time.monotonic() + self._retry_delay
                    return False
                replayed += 1
                async with self._journal_lock:
                    self._pending.pop(0)
                    if not self._pending and self._journal is not None:
                        await asyncio.to_thread(self._journal.clear)
            self._retry_delay = self._retry_at = 0.0
            self._health.succeeded("ledger.replay", started=started)
            log.warning("respond.journal_replayed", entries=replayed)
            return True

    async def _apply(self, entry: Entry) -> None:
        async with self._sessions() as session, session.begin():
            if entry.op == "claim":
                assert entry.claim is not None
                existing = await session.get(ClaimRow, entry.key)
                if existing is not None:
                    if existing.created_at_ms == entry.claim["created_at_ms"]:
                        return  # this entry was replayed (or committed late) before
                    log.error(
                        "ledger.conflict: a key claimed in the journal during an outage was claimed "
                        "by another process too; both are recorded",
                        key=entry.key,
                    )
                else:
                    await session.execute(_INSERT_CLAIM, [entry.claim])
                await session.execute(_INSERT_ROW, entry.rows)
                return
            for row in entry.rows:
                if await _has_row(session, row):
                    continue
                if entry.op == "release":
                    await session.execute(delete(ClaimRow).where(ClaimRow.key == entry.key))
                await session.execute(_INSERT_ROW, [row])

    async def release(self, event: ActionEvent) -> None:
        """Give ``event.key`` back (nothing was sent under it) and record why, atomically.

        For a claim whose action could not even be started (a Safe proposal the store refused): the
        next finding may try again. Never for a signed transaction: that one may be on its way.
        """
        row = _values(event, None, self.chain_id)
        if not await self._journals("ledger.release"):
            try:
                await self._store(
                    "ledger.release", partial(self._release_sync, row), partial(self._release_async, row)
                )
            except StoreUnavailable:
                if self._journal is None:
                    raise
            else:
                self._claimed.discard(event.key)
                return
        await self._journal_write(Entry("release", event.key, [row]))
        self._claimed.discard(event.key)

    def _release_sync(self, row: dict[str, Any]) -> None:
        assert self._hot is not None
        with self._hot.begin() as conn:
            conn.execute(delete(ClaimRow).where(ClaimRow.key == row["key"]))
            conn.execute(_INSERT_ROW, [row])

    async def _release_async(self, row: dict[str, Any]) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(ClaimRow).where(ClaimRow.key == row["key"]))
            await session.execute(_INSERT_ROW, [row])

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
        row = _values(event, signed, self.chain_id)
        if not await self._journals("ledger.append"):
            try:
                await self._store(
                    "ledger.append", partial(self._append_sync, row), partial(self._append_async, row)
                )
            except StoreUnavailable:
                if self._journal is None:
                    raise
            else:
                return
        await self._journal_write(Entry("append", event.key, [row]))

    def _append_sync(self, row: dict[str, Any]) -> None:
        assert self._hot is not None
        with self._hot.begin() as conn:
            conn.execute(_INSERT_ROW, [row])

    async def _append_async(self, row: dict[str, Any]) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(_INSERT_ROW, [row])

    def _journaled_rows(self) -> list[LedgerRow]:
        """The rows still in the journal, as (unsaved) ledger rows, oldest first."""
        return [LedgerRow(**row) for entry in self._pending for row in entry.rows if self._mine(row)]

    def _mine(self, row: Mapping[str, Any]) -> bool:
        return self.chain_id is None or row.get("chain_id") == self.chain_id

    def _own(self, query: Select[T2]) -> Select[T2]:
        """``query`` limited to this ledger's chain (all rows when it has none)."""
        return query if self.chain_id is None else query.where(LedgerRow.chain_id == self.chain_id)

    async def _read(self, operation: str, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        try:
            async with self._sessions() as session:
                return await query(session)
        except SQLAlchemyError as exc:
            if not is_unavailable(exc):
                raise
            self._health.failed(operation, exc)
            raise StoreUnavailable(f"ledger: {operation}: {short_error(exc)}") from exc

    async def history(self, key: str) -> list[LedgerRow]:
        async def query(session: AsyncSession) -> list[LedgerRow]:
            return list(
                await session.scalars(select(LedgerRow).where(LedgerRow.key == key).order_by(LedgerRow.id))
            )

        stored = await self._read("ledger.history", query)
        return stored + [r for r in self._journaled_rows() if r.key == key]

    async def rows(self, *, steps: Sequence[ActionStep] = ()) -> list[LedgerRow]:
        """Every row (of ``steps``), oldest first: the audit trail."""
        query = self._own(select(LedgerRow).order_by(LedgerRow.id))
        if steps:
            query = query.where(LedgerRow.step.in_([s.value for s in steps]))

        async def run(session: AsyncSession) -> list[LedgerRow]:
            return list(await session.scalars(query))

        wanted = {s.value for s in steps}
        journaled = [r for r in self._journaled_rows() if not wanted or r.step in wanted]
        return await self._read("ledger.rows", run) + journaled

    async def open_keys(self, signer: str) -> list[str]:
        """Keys of ``signer`` whose last step is not final: to re-broadcast or track after a restart."""
        last = (
            select(LedgerRow.key, func.max(LedgerRow.id).label("last"))
            .where(LedgerRow.key.in_(self._own(select(LedgerRow.key).where(LedgerRow.signer == signer))))
            .group_by(LedgerRow.key)
            .subquery()
        )
        query = select(LedgerRow).join(last, LedgerRow.id == last.c.last).order_by(LedgerRow.id)

        async def run(session: AsyncSession) -> dict[str, str]:
            return {r.key: r.step for r in await session.scalars(query)}

        steps = await self._read("ledger.open_keys", run)
        for row in self._journaled_rows():  # later than anything stored: each overrides its key's last step
            if row.key in steps or row.signer == signer:
                steps.pop(row.key, None)
                steps[row.key] = row.step
        return [key for key, step in steps.items() if ActionStep(step) in OPEN_STEPS]

    async def next_nonce(self, signer: str) -> int | None:
        """One above the highest nonce ``signer`` ever signed with, or None if it never signed."""

        async def run(session: AsyncSession) -> int | None:
            top = await session.scalar(
                self._own(select(func.max(LedgerRow.nonce)).where(LedgerRow.signer == signer))
            )
            return None if top is None else int(top)

        nonces = [n for n in [await self._read("ledger.next_nonce", run)] if n is not None]
        nonces += [int(r.nonce) for r in self._journaled_rows() if r.signer == signer and r.nonce is not None]
        return max(nonces) + 1 if nonces else None


def _fence_row(token: int, like: dict[str, Any], key: str = FENCE) -> dict[str, Any]:
    return {**like, "key": key, "playbook": "", "action": "", "target": "", "executor": "fence",
            "fingerprint": str(token)}  # fmt: skip


def _check_fence_sync(conn: Connection, token: int, key: str = FENCE) -> None:
    """Inside a claim's transaction: make ``token`` the newest unless a newer one claimed (then
    ``LedgerFenced``). The conditional update comes first: it takes the row's lock (PostgreSQL) or the
    database's write lock (SQLite) before the read, so no newer claim commits in between."""
    newest_token = sql_cast(_CLAIMS.c.fingerprint, BigInteger)
    conn.execute(
        update(_CLAIMS).where(_CLAIMS.c.key == key, newest_token < token).values(fingerprint=str(token))
    )
    newest = conn.execute(select(newest_token).where(_CLAIMS.c.key == key).with_for_update()).scalar_one()
    if int(newest) > token:
        raise LedgerFenced(token, int(newest))


async def _has_row(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Whether the ledger already holds ``row`` (same key, step, time and transaction hash)."""
    tx_hash = LedgerRow.tx_hash.is_(None) if row["tx_hash"] is None else LedgerRow.tx_hash == row["tx_hash"]
    query = select(LedgerRow.id).where(
        LedgerRow.key == row["key"], LedgerRow.step == row["step"], LedgerRow.at_ms == row["at_ms"], tx_hash
    )
    return (await session.execute(query.limit(1))).first() is not None
