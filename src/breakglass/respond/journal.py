"""The response ledger's journal: where claims and steps live while the store cannot take them.

Why a local file. A claim must be durable *before* its transaction is broadcast: that is what lets a
restart re-send the very same bytes instead of signing a second pause. When the database is locked or
down, the one durable place this process reaches on its own is its disk. So the ledger appends each
write it cannot make (a claim with its first steps, a later step, a release) as one JSON line, and
flushes and fsyncs the file before the write returns; the broadcast comes after. Once the store takes
writes again the ledger replays the journal into it, in order, and only then empties it.

Why exactly-once holds through an outage:

- **One writer knows every claim.** The responder holding the guardian key is the only process that
  claims its keys (``serve`` runs one; replicas sharing a key need the lease of issue 19). At start it
  reads the claims in the store *and* in the journal, before its first finding; while journaling it
  decides from that memory. A key in either place is never claimed again.
- **Durable before the send.** A line is fsynced before the claim returns. A crash after that, before
  or after the broadcast, leaves the signed bytes in the journal and the restart re-broadcasts them
  (same nonce, same hash). A line torn by a crash was never fsynced: nothing was sent under it, and
  reading skips it.
- **Replay writes nothing twice.** A claim goes in with its first steps in one transaction, skipped if
  the store already holds it; a step goes in unless an identical row (key, step, time, transaction
  hash) is there; the file is emptied only after every entry is in. A crash during the replay replays
  again.

What it does not cover: a second process claiming the same key during the outage (reconciliation
logs it as ``ledger.conflict``); a journal lost with its disk (keep it on the persistent volume,
``store.journal``); Safe proposals, which need the store to be proposed at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breakglass.logs import get_logger

__all__ = ["Entry", "LedgerJournal", "journal_path"]

log = get_logger(__name__)


def journal_path(store_url: str, configured: str | None = None, base: Path | None = None) -> Path:
    """Where the journal of the ledger on ``store_url`` lives: in the folder ``configured`` (relative
    to ``base``, the configuration's folder), else beside a SQLite file
    (``<file>.ledger-journal.jsonl``), else in ``.breakglass/`` under ``base``."""
    from sqlalchemy.engine import make_url

    base = base or Path.cwd()
    url = make_url(store_url)
    name = Path(url.database or "memory").name
    if configured:
        folder = Path(configured).expanduser()
        folder = folder if folder.is_absolute() else base / folder
        return folder / f"{name}.ledger-journal.jsonl"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        return db.with_name(db.name + ".ledger-journal.jsonl")
    return base / ".breakglass" / f"{url.get_backend_name()}-{name}.ledger-journal.jsonl"


@dataclass(frozen=True, slots=True)
class Entry:
    """One write the store could not take: ``op`` is ``claim`` (``claim`` + ``rows``), ``append``
    (``rows`` of one step) or ``release`` (``rows``: the step recording why)."""

    op: str
    key: str
    rows: list[dict[str, Any]]
    claim: dict[str, Any] | None = None

    def to_line(self) -> str:
        body: dict[str, Any] = {"op": self.op, "key": self.key, "rows": self.rows}
        if self.claim is not None:
            body["claim"] = self.claim
        return json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Entry:
        body = json.loads(line)
        return cls(str(body["op"]), str(body["key"]), list(body["rows"]), body.get("claim"))


class LedgerJournal:
    """An append-only JSON-lines file, fsynced on every append. Synchronous: call it off the loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Entry]:
        """Every complete entry, oldest first. A last line torn by a crash (never fsynced, so never
        acted on) is dropped with a warning."""
        if not self.path.exists():
            return []
        entries: list[Entry] = []
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        for number, line in enumerate(lines, 1):
            try:
                if not line.endswith("\n"):
                    raise ValueError("no line end")
                entries.append(Entry.from_line(line))
            except (ValueError, KeyError, TypeError) as exc:
                if number == len(lines):
                    log.warning("respond.journal_torn_line", path=str(self.path), line=number, error=str(exc))
                    continue
                raise ValueError(f"{self.path}:{number}: not a journal entry ({exc})") from exc
        return entries

    def append(self, entry: Entry) -> None:
        """Add ``entry`` and make it durable (flush + fsync) before returning."""
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(entry.to_line())
            handle.flush()
            os.fsync(handle.fileno())
        if new:  # the file's directory entry must survive a crash too
            _fsync_dir(self.path.parent)

    def clear(self) -> None:
        """Empty the journal (every entry is in the store), durably."""
        if self.path.exists():
            self.path.unlink()
            _fsync_dir(self.path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
