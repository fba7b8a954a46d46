"""The follower's checkpoint store on SQLite and PostgreSQL: rows written (the driver's own executemany
on PostgreSQL, one statement from a JSON array on SQLite), read back, rewound (marked, not deleted)
and pruned; fenced by the detect lease's token."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# Not writing the rows the same transaction's prune deletes again leaves the table as inserting every
# row and pruning after: checked against that reference, on a scripted history and on generated ones.

Row = tuple[int, str, str, int, bool]  # number, hash, parent hash, findings, orphaned


def block(n: int, branch: int) -> tuple[int, str, str, int]:
    return (n, f"0x{branch:02x}{n:062x}", f"0x{branch:02x}{n - 1:062x}", n % 5)


class Reference:
    """The table as the store wrote it before: every row inserted, then old canonical rows pruned;
    a row recorded as orphaned takes the values it is written again with (its block canonical again,
    or retracted again) unless, canonical again, the same transaction's prune would delete it: then
    it is not written and stays orphaned."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.table: dict[tuple[int, str], tuple[str, int, bool]] = {}

    def advance(
        self, batch: list[tuple[int, str, str, int]], orphaned: set[str], *, replay: bool = False
    ) -> None:
        newest = batch[-1][0]
        prune = self.keep and newest // 256 != (batch[0][0] - 1) // 256
        for n, h, p, f in batch:
            o = h in orphaned
            if (n, h) in self.table:
                was = self.table[n, h][2]
                assert replay or was, "a test history writes a canonical row twice only in a replay"
                if not (was or o) or (prune and not o and n < newest - self.keep):
                    continue
            self.table[n, h] = (p, f, o)
        if prune:
            for (n, h), (_p, _f, o) in list(self.table.items()):
                if not o and n < newest - self.keep:
                    del self.table[n, h]

    def rewind(self, ancestor: int) -> None:
        for (n, h), (p, f, o) in list(self.table.items()):
            if n > ancestor and not o:
                self.table[n, h] = (p, f, True)

    def rows(self) -> list[Row]:
        return sorted((n, h, p, f, o) for (n, h), (p, f, o) in self.table.items())


async def table(sessions: async_sessionmaker[AsyncSession], chain_id: int) -> list[Row]:
    async with sessions() as session:
        stored = await session.execute(
            select(BlockRow.number, BlockRow.hash, BlockRow.parent_hash, BlockRow.findings, BlockRow.orphaned)
            .where(BlockRow.chain_id == chain_id)
            .order_by(BlockRow.number, BlockRow.hash)
        )
        return [(n, h, p, f, bool(o)) for n, h, p, f, o in stored]


@pytest.mark.parametrize("keep", [0, 40])
async def test_rows_the_prune_would_delete_are_not_written_and_the_table_ends_the_same(
    sessions: async_sessionmaker[AsyncSession], keep: int
) -> None:
    chain = 20 + keep
    store, reference = CheckpointStore(sessions, keep=keep), Reference(keep)

    async def advance(
        batch: list[tuple[int, str, str, int]], orphaned: set[str], replay: bool = False
    ) -> None:
        await store.advance_many(chain, batch, orphaned=orphaned, replay=replay)
        reference.advance(batch, orphaned, replay=replay)
        assert await table(sessions, chain) == reference.rows()

    async def rewind(ancestor: int) -> None:
        await store.rewind(chain, ancestor)
        reference.rewind(ancestor)
        assert await table(sessions, chain) == reference.rows()

    await advance([block(n, 0) for n in range(100)], set())  # larger than keep, crosses 0: pruned
    await advance([block(n, 0) for n in range(100, 201)], set())  # within 0-255: not pruned
    await rewind(195)
    retracted = {block(198, 1)[1], block(199, 1)[1]}  # retracted before they were written
    await advance([block(n, 1) for n in range(196, 200)] + [block(n, 2) for n in range(198, 601)], retracted)
    await advance([block(n, 2) for n in range(590, 700)], set(), replay=True)  # not crossing
    await advance([block(n, 2) for n in range(690, 801)], set(), replay=True)  # crossing 768
    await advance([block(n, 2) for n in range(801, 1001)], set())  # more than keep, not crossing
    await advance([block(n, 2) for n in range(1001, 1024)], set())  # up to 1023: not crossing
    await advance([block(1024, 2)], set())  # one row, crossing
    await rewind(1000)
    await advance([block(n, 3) for n in range(1001, 1400)], {block(1010, 3)[1]})
    rows_left = await table(sessions, chain)
    if keep:
        assert [n for n, _h, _p, _f, o in rows_left if not o] == list(range(1399 - keep, 1400))
        assert {(n, h) for n, h, _p, _f, o in rows_left if o} >= {
            (198, block(198, 1)[1]),
            (1010, block(1010, 3)[1]),
        }
    else:
        assert len([r for r in rows_left if not r[4]]) == 1400 - 1  # 1010 orphaned in its batch


_histories = itertools.count(100)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keep=st.sampled_from([0, 1, 7, 40, 300]),
    steps=st.lists(
        st.tuples(
            st.booleans(),  # rewind (else advance)
            st.integers(0, 30),  # rewind: how far back; advance: how many rows already written to replay
            st.integers(1, 600),  # advance: new rows
            st.sets(st.integers(0, 629), max_size=3),  # advance: which rows of the batch are retracted
        ),
        min_size=1,
        max_size=8,
    ),
)
async def test_generated_histories_end_as_inserting_everything_then_pruning(
    sessions: async_sessionmaker[AsyncSession], keep: int, steps: list[tuple[bool, int, int, set[int]]]
) -> None:
    chain = next(_histories)
    store, reference = CheckpointStore(sessions, keep=keep), Reference(keep)
    branch, following = 0, 0  # the next block's number
    for rewind, back, new, retracted in steps:
        if rewind:
            ancestor = max(following - 1 - back, 0)
            await store.rewind(chain, ancestor)
            reference.rewind(ancestor)
            # an odd ``back``: back to the branch before (a flip-flop: its rows come again, same hashes)
            branch, following = branch - 1 if back % 2 and branch else branch + 1, ancestor + 1
        else:
            first = max(following - back, 0)
            batch = [block(n, branch) for n in range(first, following + new)]
            orphaned = {batch[i][1] for i in retracted if i < len(batch)}
            await store.advance_many(chain, batch, orphaned=orphaned, replay=first < following)
            reference.advance(batch, orphaned, replay=first < following)
            following += new
        assert await table(sessions, chain) == reference.rows()


# A flip-flop reorg: the chain goes to branch B and back to branch A, the same blocks, same hashes.
# A's rows, orphaned by the first reorg, are written again: recorded canonical again, with the values
# they were handled with last, each block once.


async def test_rows_orphaned_by_a_reorg_are_canonical_again_when_the_chain_goes_back_to_their_branch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    a, b = [block(n, 0) for n in range(10)], [block(n, 1) for n in range(7, 10)]
    await store.advance_many(13, a)
    await store.rewind(13, 6)  # A's 7..9 orphaned
    await store.advance_many(13, b)
    await store.rewind(13, 6)  # B's orphaned: back to A
    again = [(n, h, p, f + 10) for n, h, p, f in [*a[7:], block(10, 0)]]  # handled again, other findings
    await store.advance_many(13, again)
    expected = [(n, h, p, f, False) for n, h, p, f in [*a[:7], *again]]
    expected += [(n, h, p, f, True) for n, h, p, f in b]
    assert await table(sessions, 13) == sorted(expected)
    assert await store.last(13) == Checkpoint(10, block(10, 0)[1])
    assert await store.hash_at(13, 8) == a[8][1]
    # and once more to B, whose rows come back the same way, also in a replay
    await store.rewind(13, 6)
    await store.advance_many(13, [*b, block(10, 1)], replay=True)
    assert [(n, h) for n, h, _o in await store.processed(13)] == [
        *((n, h) for n, h, _p, _f in a[:7]),
        *((n, h) for n, h, _p, _f in b),
        (10, block(10, 1)[1]),
    ]
    assert len(await store.processed(13, include_orphaned=True)) == 10 + 4 + 1


async def test_a_row_retracted_again_in_its_batch_stays_orphaned_and_is_not_a_duplicate(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    a = [block(n, 0) for n in range(5)]
    await store.advance_many(14, a)
    await store.rewind(14, 2)
    # A's 3..4 handled again and retracted again before they were written, then B
    await store.advance_many(14, [*a[3:], block(3, 1)], orphaned={a[3][1], a[4][1]})
    assert set(await store.processed(14, include_orphaned=True)) == {
        *((n, h, False) for n, h, _p, _f in a[:3]),
        (3, a[3][1], True),
        (4, a[4][1], True),
        (3, block(3, 1)[1], False),
    }


async def test_a_replay_marks_a_row_its_unseen_commit_wrote_and_a_reorg_retracted_since(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = CheckpointStore(sessions, keep=0)
    batch = [block(n, 0) for n in range(5)]
    await store.advance_many(15, batch)  # committed, but the writer saw the connection drop
    retracted = {batch[3][1], batch[4][1]}  # a reorg in the unwritten rows since, then B
    await store.advance_many(15, [*batch, block(3, 1)], orphaned=retracted, replay=True)
    assert [(n, h) for n, h, _o in await store.processed(15)] == [
        *((n, h) for n, h, _p, _f in batch[:3]),
        (3, block(3, 1)[1]),
    ]  # one canonical row a height: ``hash_at`` and ``last`` are well defined
    assert await store.hash_at(15, 3) == block(3, 1)[1]
    assert await store.hash_at(15, 4) is None
