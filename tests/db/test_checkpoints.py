"""The follower's checkpoint store on SQLite and PostgreSQL: rows written (the driver's own executemany
on PostgreSQL, one statement from a JSON array on SQLite), read back, rewound (marked, not deleted)
and pruned; fenced by the detect lease's token."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.chain.checkpoint import BlockRow, Checkpoint, CheckpointFenced, CheckpointStore


def rows(first: int, last: int, tag: str = "a") -> list[tuple[int, str, str, int]]:
    return [(n, f"0x{tag * 2}{n:062x}", f"0x{tag * 2}{n - 1:062x}", n % 3) for n in range(first, last + 1)]


async def test_a_backfill_window_is_written_read_back_and_rewound(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    await store.advance_many(5, rows(0, 1999))
    assert await store.last(5) == Checkpoint(1999, rows(1999, 1999)[0][1])
    assert await store.hash_at(5, 1000) == rows(1000, 1000)[0][1]
    assert await store.last(6) is None  # chains are apart
    orphaned = await store.rewind(5, 1997)
    assert [c.number for c in orphaned] == [1999, 1998]
    await store.advance_many(5, rows(1998, 1999, "b"))  # the new branch, same heights
    processed = await store.processed(5, include_orphaned=True)
    assert len(processed) == 2002
    assert [(n, o) for n, _h, o in processed if n >= 1998] == [
        (1998, False),
        (1998, True),
        (1999, False),
        (1999, True),
    ]
    assert (await store.last(5)) == Checkpoint(1999, rows(1999, 1999, "b")[0][1])


async def test_old_canonical_rows_are_pruned_orphaned_ones_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=300)
    await store.advance_many(7, rows(0, 99))
    await store.rewind(7, 49)
    await store.advance_many(7, rows(50, 999, "c"))
    numbers = [(n, o) for n, _h, o in await store.processed(7, include_orphaned=True)]
    assert all(o for n, o in numbers if n < 999 - 300)  # only the orphaned rows are left down there
    assert [n for n, o in numbers if not o] == list(range(999 - 300, 1000))


async def test_a_write_with_an_older_fencing_token_is_refused_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    await store.claim(8, 3)
    await store.advance_many(8, rows(0, 9), fence=3, states={"flow": {"window": [1]}})
    await store.claim(8, 4)  # a standby took the lease with a newer token
    with pytest.raises(CheckpointFenced) as refused:
        await store.advance_many(8, rows(10, 19), fence=3, states={"flow": {"window": [2]}})
    assert (refused.value.token, refused.value.newest) == (3, 4)
    with pytest.raises(CheckpointFenced):
        await store.rewind(8, 5, fence=3)
    assert await store.last(8) == Checkpoint(9, rows(9, 9)[0][1])  # neither moved nor rewound
    assert await store.states(8) == {"flow": {"window": [1]}}  # the fence row is not a detector's
    await store.advance_many(8, rows(10, 19), fence=4)
    assert (await store.last(8) or Checkpoint(0, "")).number == 19
    assert await store.fence(8) == 4 and await store.fence(9) is None
    with pytest.raises(CheckpointFenced):
        await store.claim(8, 2)  # a claim never goes back either


async def test_an_unfenced_writer_is_not_checked(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = CheckpointStore(sessions, keep=0)
    await store.claim(11, 5)
    await store.advance_many(11, rows(0, 3))  # one follower per chain and no lease: as before
    assert (await store.last(11) or Checkpoint(0, "")).number == 3


async def test_a_replayed_batch_skips_the_rows_already_written_and_keeps_each_rows_values(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    await store.advance_many(12, rows(0, 4))
    retracted = rows(6, 6)[0][1]  # a reorg retracted it before it could be written
    await store.advance_many(12, rows(3, 7), orphaned={retracted}, replay=True)
    processed = await store.processed(12, include_orphaned=True)
    assert [(n, h, o) for n, h, o in processed] == [(n, h, h == retracted) for n, h, _p, _f in rows(0, 7)]
    async with sessions() as session:
        stored = await session.execute(
            select(BlockRow.number, BlockRow.parent_hash, BlockRow.findings)
            .where(BlockRow.chain_id == 12)
            .order_by(BlockRow.number)
        )
        assert [tuple(r) for r in stored] == [(n, p, f) for n, _h, p, f in rows(0, 7)]
    assert await store.last(12) == Checkpoint(7, rows(7, 7)[0][1])
    assert await store.hash_at(12, 6) is None and await store.hash_at(12, 5) == rows(5, 5)[0][1]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await store.advance_many(12, rows(7, 8))  # without replay a row written twice is an error
