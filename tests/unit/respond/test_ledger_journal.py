"""The ledger while its SQLite store is locked by another connection: claims and steps go to the
fsynced journal, reads see them, and the replay writes each exactly once (issue 20)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from breakglass.respond import ActionEvent, ActionStep, Ledger, create_tables
from breakglass.respond.journal import LedgerJournal, journal_path
from breakglass.respond.ledger import Signed, make_hot_engine
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.health import StoreHealth
from breakglass.testing import SqliteLock

SIGNER = "0x" + "11" * 20


def event(key: str, step: ActionStep = ActionStep.INTENT, at: float = 0.0) -> ActionEvent:
    return ActionEvent(step, key, "pb", "pause", "venue.pause()", "fp", monitor_id="m", at_ms=at)


def signed(nonce: int) -> Signed:
    return Signed(SIGNER, nonce, "0x" + f"{nonce:02x}" * 32, b"\x02raw")


@dataclass
class Db:
    path: Path
    url: str
    engine: AsyncEngine
    journal: Path

    def ledger(self, health: StoreHealth | None = None) -> Ledger:
        """As ``build_responder`` makes it: hot engine with a short wait, journal beside the file."""
        return Ledger(make_sessionmaker(self.engine), hot=make_hot_engine(self.url, busy_timeout=0.2),
                      journal=LedgerJournal(self.journal), health=health or StoreHealth(),
                      store_timeout=5)  # fmt: skip


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Db]:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url, busy_timeout=0.2)
    await create_tables(engine)
    yield Db(path, url, engine, journal_path(url))
    await engine.dispose()


async def test_claims_and_steps_during_a_lock_are_journaled_then_replayed_exactly_once(db: Db) -> None:
    health = StoreHealth()
    ledger = db.ledger(health)
    await ledger.load()
    assert await ledger.claim(
        event("before", at=1.0), "guardian", (event("before", ActionStep.SIGNED, 1.5), signed(6))
    )
    async with SqliteLock(db.path):
        first = event("k", at=2.0)
        assert await ledger.claim(first, "guardian", (event("k", ActionStep.SIGNED, 3.0), signed(7)))
        assert not health.available and ledger.journaling and db.journal.exists()
        # durable before the send: the line is in the file already
        assert '"key":"k"' in db.journal.read_text()
        assert not await ledger.claim(event("k", at=4.0), "guardian")  # this process knows it took it
        assert not await ledger.claim(event("before", at=4.5), "guardian")  # and what the store holds
        await ledger.append(event("k", ActionStep.SUBMITTED, 5.0))
        assert await ledger.claim(event("other", at=6.0), "notify")
        # reads merge the journal with the store (which still answers reads under a write lock)
        assert [r.step for r in await ledger.history("k")] == ["intent", "signed", "submitted"]
        assert await ledger.open_keys(SIGNER) == ["before", "k"]
        assert await ledger.next_nonce(SIGNER) == 8
        assert not await ledger.reconcile()  # still locked: nothing replayed, nothing lost
    await ledger.reconcile()  # a backoff may still run: wait it out like the poll loop would
    while ledger.journaling:
        await ledger.reconcile()
    assert not db.journal.exists() and health.available
    fresh = db.ledger()  # what another reader (or a restart) sees: the store alone
    await fresh.load()
    assert [(r.step, r.at_ms) for r in await fresh.history("k")] == [
        ("intent", 2.0),
        ("signed", 3.0),
        ("submitted", 5.0),
    ]
    assert [r.step for r in await fresh.history("other")] == ["intent"]
    assert await fresh.is_claimed("k") and await fresh.next_nonce(SIGNER) == 8
    # after the replay, writes go straight to the store again
    await ledger.append(event("k", ActionStep.CONFIRMED, 7.0))
    assert not ledger.journaling and [r.step for r in await fresh.history("k")][-1] == "confirmed"
    for each in (ledger, fresh):
        await each.close()


async def test_a_restart_during_the_outage_knows_the_journaled_claims_and_sends_nothing_twice(db: Db) -> None:
    async with SqliteLock(db.path):
        crashed = db.ledger()
        await crashed.load()
        assert await crashed.claim(
            event("k", at=1.0), "guardian", (event("k", ActionStep.SIGNED, 2.0), signed(3))
        )
        await crashed.close()  # the process dies here, the store still locked
        restarted = db.ledger()
        await restarted.load()  # reads the store (it answers) and the journal
        assert await restarted.is_claimed("k")
        assert not await restarted.claim(event("k", at=3.0), "guardian")
        assert await restarted.open_keys(SIGNER) == ["k"]  # recover() re-broadcasts its signed bytes
        rows = await restarted.history("k")
        assert rows[-1].raw_tx == "0x02726177" and rows[-1].nonce == 3
    while restarted.journaling:
        await restarted.reconcile()
    assert [r.step for r in await restarted.history("k")] == ["intent", "signed"]
    await restarted.close()


async def test_a_replay_interrupted_before_the_journal_was_emptied_writes_nothing_twice(db: Db) -> None:
    async with SqliteLock(db.path):
        ledger = db.ledger()
        await ledger.load()
        await ledger.claim(event("k", at=1.0), "guardian", (event("k", ActionStep.SIGNED, 2.0), signed(3)))
        await ledger.append(event("k", ActionStep.SUBMITTED, 3.0))
        await ledger.release(event("gone", ActionStep.FAILED, 4.0))
        saved = db.journal.with_suffix(".saved")
        shutil.copy(db.journal, saved)
    while ledger.journaling:
        await ledger.reconcile()
    await ledger.close()
    shutil.copy(saved, db.journal)  # as if the process died between the last insert and the unlink
    again = db.ledger()
    await again.load()  # finds the journal
    assert again.journaling and await again.reconcile()  # and the first reconcile replays it
    assert not again.journaling and not db.journal.exists()
    assert [(r.step, r.at_ms) for r in await again.history("k")] == [
        ("intent", 1.0),
        ("signed", 2.0),
        ("submitted", 3.0),
    ]
    assert [r.step for r in await again.history("gone")] == ["failed"]
    await again.close()


def test_a_line_torn_by_a_crash_is_dropped_and_anything_else_malformed_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = LedgerJournal(path)
    path.write_text('{"op":"append","key":"k","rows":[]}\n{"op":"claim","key":"x","ro', encoding="utf-8")
    assert [e.key for e in journal.read()] == ["k"]  # the torn line was never fsynced: nothing was sent
    path.write_text('{"op":"append"}\n{"op":"append","key":"k","rows":[]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"j.jsonl:1: not a journal entry"):
        journal.read()


def test_the_journal_lives_beside_a_sqlite_file_or_where_configured(tmp_path: Path) -> None:
    assert journal_path(f"sqlite:///{tmp_path}/bg.db") == tmp_path / "bg.db.ledger-journal.jsonl"
    assert journal_path("postgresql://u@h/prod", base=tmp_path) == (
        tmp_path / ".breakglass" / "postgresql-prod.ledger-journal.jsonl"
    )
    assert (
        journal_path("postgresql://u@h/prod", "spool", tmp_path)
        == tmp_path / "spool" / "prod.ledger-journal.jsonl"
    )
