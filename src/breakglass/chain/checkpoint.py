"""The follower's persistent cursor: which blocks of a chain were processed, by number and hash.

One row per processed block (``chain_blocks``) written in the same database transaction that moves
the cursor, so "processed" and "checkpointed" cannot disagree after a crash: a restart resumes at
``last processed + 1``. The stored hashes are what reorg detection compares parent hashes against.
Rows of blocks orphaned by a reorg are marked (``orphaned``), never deleted: they are the record of
what was retracted. Old canonical rows beyond ``keep`` blocks are pruned.

The detectors' state that a restart needs (``detect_state``: which invariants are broken since when,
flow windows, set-up taint) is written in the same transaction as the blocks it reflects, so the
state and the cursor never disagree after a crash.

Fencing (several detect replicas of one chain, one active at a time through a lease): the replica that
takes the lease ``claim``s the cursor with the lease's fencing token before it reads it, and passes
the token (``fence=``) with every write; a write carrying an older token than the newest claim is
refused with ``CheckpointFenced`` and changes nothing, so a replica that lost its lease (paused,
partitioned) cannot move the cursor or overwrite the detectors' state under the one that took over.
The newest claim is a reserved row of ``detect_state`` (``FENCE``: no monitor id starts with ``:``),
locked (``FOR UPDATE``) by each fenced write, so a claim waits for a write in flight and the write
after it is refused.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from sqlalchemy import JSON, BigInteger, Boolean, Integer, String, Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.errors import StoreError
from breakglass.store.db import Base

__all__ = ["FENCE", "BlockRow", "Checkpoint", "CheckpointFenced", "CheckpointStore", "DetectorStateRow"]

FENCE = ":fence"
"""The ``detect_state`` row holding the newest fencing token that claimed a chain's cursor."""


class CheckpointFenced(StoreError):
    """A checkpoint write carried a fencing token older than the cursor's newest claim: another
    replica holds the chain now. Never recoverable: this replica must stop following."""

    def __init__(self, chain_id: int, token: int, newest: int) -> None:
        super().__init__(
            f"chain {chain_id}: checkpoint write with fencing token {token} refused: "
            f"token {newest} claimed the cursor since",
            recoverable=False,
        )
        self.chain_id = chain_id
        self.token = token
        self.newest = newest


class BlockRow(Base):
    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(String(66), primary_key=True)
    parent_hash: Mapped[str] = mapped_column(String(66))
    findings: Mapped[int] = mapped_column(Integer, default=0)
    orphaned: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class DetectorStateRow(Base):
    """One stateful detector's state (``snapshot()``), as of the chain's checkpoint."""

    __tablename__ = "detect_state"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    detector: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


_TABLE = cast(Table, BlockRow.__table__)
_RECORDED = (  # SQLite 3.24+ and PostgreSQL alike; what a row already recorded becomes:
    # - orphaned: the batch's values. Its block is canonical again (the chain went back to its branch,
    #   same hash: a flip-flop between two competing branches) or was retracted again;
    # - canonical, orphaned in the batch: orphaned (an attempt that committed unseen wrote it, a reorg
    #   retracted it since: only in a replay);
    # - canonical, canonical in the batch: left as it is (a replay skips it; otherwise an error)
    " ON CONFLICT (chain_id, number, hash) DO UPDATE SET parent_hash = excluded.parent_hash,"
    " findings = excluded.findings, orphaned = excluded.orphaned"
    " WHERE chain_blocks.orphaned OR excluded.orphaned"
)
_INSERT_FORMAT = (  # psycopg's paramstyle
    "INSERT INTO chain_blocks (chain_id, number, hash, parent_hash, findings, orphaned) "
    "VALUES (%s, %s, %s, %s, %s, %s)" + _RECORDED
)
_JSON = msgspec.json.Encoder()
_INSERT_JSON = (  # SQLite: every row in one statement, from one JSON array of [number, hash, parent, ...]
    "INSERT INTO chain_blocks (chain_id, number, hash, parent_hash, findings, orphaned) "  # noqa: S608 - constants
    "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
    "json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?) WHERE true" + _RECORDED
)  # ("WHERE true": an INSERT ... SELECT ... ON CONFLICT needs a WHERE for SQLite's parser)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    number: int
    hash: str


class CheckpointStore:
    """Reads and advances the cursor of each chain. Every method is one short transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, keep: int = 4096) -> None:
        self._sessions = sessions
        self._keep = keep

    async def last(self, chain_id: int) -> Checkpoint | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(BlockRow.number, BlockRow.hash)
                    .where(BlockRow.chain_id == chain_id, BlockRow.orphaned.is_(False))
                    .order_by(BlockRow.number.desc())
                    .limit(1)
                )
            ).first()
        return Checkpoint(row[0], row[1]) if row else None

    async def hash_at(self, chain_id: int, number: int) -> str | None:
        async with self._sessions() as session:
            return (
                await session.execute(
                    select(BlockRow.hash).where(
                        BlockRow.chain_id == chain_id,
                        BlockRow.number == number,
                        BlockRow.orphaned.is_(False),
                    )
                )
            ).scalar_one_or_none()

    async def advance(
        self, chain_id: int, number: int, block_hash: str, parent_hash: str, findings: int = 0
    ) -> None:
        """Record block ``number`` as processed."""
        await self.advance_many(chain_id, [(number, block_hash, parent_hash, findings)])

    async def claim(self, chain_id: int, token: int) -> None:
        """Make ``token`` the cursor's newest fencing token (the lease was just taken with it): from
        now on writes with an older token are refused. Waits for a fenced write in flight; raises
        ``CheckpointFenced`` if a newer token claimed it already."""
        try:
            async with self._sessions() as session, session.begin():
                await _check_fence(session, chain_id, token)
        except IntegrityError:  # another first claim inserted the row meanwhile: compare with it
            async with self._sessions() as session, session.begin():
                await _check_fence(session, chain_id, token)

    async def fence(self, chain_id: int) -> int | None:
        """The newest fencing token that claimed ``chain_id``'s cursor (None: never claimed)."""
        async with self._sessions() as session:
            state = (
                await session.execute(
                    select(DetectorStateRow.state).where(
                        DetectorStateRow.chain_id == chain_id, DetectorStateRow.detector == FENCE
                    )
                )
            ).scalar_one_or_none()
        return int(state["token"]) if state else None

    async def advance_many(
        self,
        chain_id: int,
        rows: Sequence[tuple[int, str, str, int]],
        *,
        orphaned: Collection[str] = (),
        replay: bool = False,
        states: Mapping[str, Mapping[str, Any]] | None = None,
        fence: int | None = None,
    ) -> None:
        """Record consecutive blocks (number, hash, parent hash, findings) in one transaction, with
        the detectors' ``states`` after them (by detector); prunes canonical rows older than ``keep``
        blocks now and then (when the batch crosses a multiple of 256), and then does not write the
        batch's own rows that the prune would delete. Rows whose hash is in ``orphaned`` are recorded
        as orphaned (a reorg retracted them before they could be written). A row recorded as orphaned
        takes the batch's values: a block retracted by a reorg is canonical again when the chain goes
        back to its branch (same hash). ``replay`` skips rows already recorded as canonical (a retry
        after an attempt whose commit may have reached the database), and marks those the batch says
        are orphaned; without it, a canonical row written twice is an error (``StoreError``).
        ``fence``: the writer's fencing token (``CheckpointFenced`` if a newer one claimed the cursor)."""
        if not rows:
            return
        async with self._sessions() as session, session.begin():
            if fence is not None:
                await _check_fence(session, chain_id, fence)
            if states:
                await _save_states(session, chain_id, states)
            newest = rows[-1][0]
            prune = bool(self._keep) and newest // 256 != (rows[0][0] - 1) // 256
            cutoff = newest - self._keep if prune else 0
            if prune:
                # rows the prune below deletes again in this transaction (canonical, older than
                # ``keep`` blocks: most of a long backfill's batch of thousands) are not written at
                # all: the table ends the same, without their insert, their delete and their JSON
                rows = [r for r in rows if r[0] >= cutoff or r[1] in orphaned]
            conn = await session.connection()
            if not rows:
                written = 0  # a negative ``keep``: every canonical row is pruned
            elif conn.dialect.name == "sqlite":
                # one statement for the whole batch: the driver's executemany takes the GIL back for
                # every row, ~11-14 us a row of the store's thread's CPU while a backfill keeps the event
                # loop busy, this ~1 (docs/detection.md, "Backfill CPU per block")
                values = [(n, h, p, f, h in orphaned) for n, h, p, f in rows]
                result = await conn.exec_driver_sql(_INSERT_JSON, (chain_id, _JSON.encode(values).decode()))
                written = result.rowcount
            else:
                # the driver's own executemany (psycopg pipelines it): SQLAlchemy's per-parameter
                # processing cost ~9 us a row (18 ms for a 2,000-block backfill), the driver's ~1 us
                result = await conn.exec_driver_sql(
                    _INSERT_FORMAT, [(chain_id, n, h, p, f, h in orphaned) for n, h, p, f in rows]
                )
                written = result.rowcount
            if written != len(rows) and not replay:  # rows inserted or updated
                raise StoreError(
                    f"chain {chain_id}: {len(rows) - written} duplicate canonical block row(s) "
                    f"in {rows[0][0]}..{rows[-1][0]}: written twice"
                )
            if prune:
                await session.execute(
                    delete(BlockRow).where(
                        BlockRow.chain_id == chain_id,
                        BlockRow.number < cutoff,
                        BlockRow.orphaned.is_(False),
                    )
                )

    async def above(self, chain_id: int, ancestor: int) -> list[Checkpoint]:
        """The canonical blocks above ``ancestor``, newest first (what ``rewind`` would orphan)."""
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(BlockRow.number, BlockRow.hash)
                    .where(
                        BlockRow.chain_id == chain_id,
                        BlockRow.number > ancestor,
                        BlockRow.orphaned.is_(False),
                    )
                    .order_by(BlockRow.number.desc())
                )
            ).all()
        return [Checkpoint(n, h) for n, h in rows]

    async def states(self, chain_id: int) -> dict[str, dict[str, Any]]:
        """The detectors' states saved with the checkpoint, by detector."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(DetectorStateRow.detector, DetectorStateRow.state).where(
                    DetectorStateRow.chain_id == chain_id, DetectorStateRow.detector != FENCE
                )
            )
            return {detector: dict(state) for detector, state in rows}

    async def rewind(
        self,
        chain_id: int,
        ancestor: int,
        *,
        states: Mapping[str, Mapping[str, Any]] | None = None,
        fence: int | None = None,
    ) -> list[Checkpoint]:
        """Mark every block above ``ancestor`` orphaned (with the detectors' ``states`` as of the
        ancestor); return them, newest first. ``fence`` as for ``advance_many``."""
        async with self._sessions() as session, session.begin():
            if fence is not None:
                await _check_fence(session, chain_id, fence)
            if states:
                await _save_states(session, chain_id, states)
            rows = (
                await session.execute(
                    select(BlockRow.number, BlockRow.hash)
                    .where(
                        BlockRow.chain_id == chain_id,
                        BlockRow.number > ancestor,
                        BlockRow.orphaned.is_(False),
                    )
                    .order_by(BlockRow.number.desc())
                )
            ).all()
            await session.execute(
                update(BlockRow)
                .where(
                    BlockRow.chain_id == chain_id, BlockRow.number > ancestor, BlockRow.orphaned.is_(False)
                )
                .values(orphaned=True)
            )
        return [Checkpoint(n, h) for n, h in rows]

    async def processed(
        self, chain_id: int, *, include_orphaned: bool = False
    ) -> list[tuple[int, str, bool]]:
        """Every recorded block as (number, hash, orphaned), oldest first: for audits and tests."""
        query = select(BlockRow.number, BlockRow.hash, BlockRow.orphaned).where(BlockRow.chain_id == chain_id)
        if not include_orphaned:
            query = query.where(BlockRow.orphaned.is_(False))
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(BlockRow.number, BlockRow.orphaned))).all()
        return [(n, h, o) for n, h, o in rows]


async def _check_fence(session: AsyncSession, chain_id: int, token: int) -> None:
    """Inside a write's transaction: refuse ``token`` if a newer one claimed the cursor, else make it
    the newest. The row is locked until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    row = (
        await session.execute(
            select(DetectorStateRow)
            .where(DetectorStateRow.chain_id == chain_id, DetectorStateRow.detector == FENCE)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None:
        session.add(DetectorStateRow(chain_id=chain_id, detector=FENCE, state={"token": token}))
        await session.flush()  # two first claims at once: the second fails on the primary key
        return
    newest = int(row.state["token"])
    if token < newest:
        raise CheckpointFenced(chain_id, token, newest)
    if token > newest:
        row.state = {"token": token}
        await session.flush()


async def _save_states(session: AsyncSession, chain_id: int, states: Mapping[str, Mapping[str, Any]]) -> None:
    await session.execute(
        delete(DetectorStateRow).where(
            DetectorStateRow.chain_id == chain_id, DetectorStateRow.detector.in_(list(states))
        )
    )
    session.add_all(
        DetectorStateRow(chain_id=chain_id, detector=name, state=dict(state))
        for name, state in states.items()
    )
    await session.flush()
