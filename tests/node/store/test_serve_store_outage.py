"""``breakglass serve`` as a real process while its store fails (issue 20): detection and containment go
on, and once the store is back every block's checkpoint, every finding's alert and every ledger row is
in it, once; no action is sent twice, across a SIGKILL and a restart during the outage too.

SQLite: another process holds the write lock (``BEGIN EXCLUSIVE``, as a backup tool or a ``sqlite3``
shell left open does). PostgreSQL: a server of the test's own (``initdb`` + ``pg_ctl`` on a temporary
folder and port, never the shared server) stopped and started again. It needs PostgreSQL's server
binaries (``/usr/lib/postgresql/*/bin``, or ``BREAKGLASS_PG_BIN``) and, run as root, a ``postgres``
user to run them as; without them the test is skipped, unless ``BREAKGLASS_REQUIRE_SERVICES=1`` (CI)
makes that a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_outage_support import Served, assert_everything_written_once, serve_venue, stop, wait_for

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.solc import Build
from breakglass.respond.journal import journal_path
from breakglass.testing import SqliteLock

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def node() -> Iterator[Anvil]:
    with Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=0.5)) as anvil:
        yield anvil


def test_a_sqlite_lock_held_by_another_process_neither_stops_serve_nor_loses_or_repeats_anything(
    node: Anvil, build: Build, tmp_path: Path
) -> None:
    db = tmp_path / "bg.db"
    served = serve_venue(node, build, tmp_path, f"sqlite:///{db}")
    journal = journal_path(served.url)
    try:
        first_run = served.start()
        wait_for(
            lambda: _has_table(served) and bool(served.query("SELECT 1 FROM chain_blocks")), "checkpoints"
        )
        first = min(n for (n,) in served.query("SELECT number FROM chain_blocks"))
        served.set_leverage(40)  # before the outage: claimed in the store
        wait_for(lambda: served.paused(40), "market 40 paused")
        with SqliteLock(db, process=True):
            served.set_leverage(41)  # during the lock: claimed in the journal, sent
            wait_for(lambda: served.paused(41), "market 41 paused while the store is locked")
            wait_for(lambda: served.logged("store.unavailable"), "the outage logged")
            assert journal.exists() and first_run.poll() is None
            served.set_leverage(40)  # the same breach again: its claim is in the store, not sent again
            first_run.send_signal(signal.SIGKILL)  # a crash while the store is locked
            first_run.wait(timeout=30)
            second_run = served.start()  # started while the lock is held
            served.set_leverage(42)
            wait_for(lambda: served.paused(42), "market 42 paused by the run started under the lock")
            served.set_leverage(41)  # known from the journal only: not sent again
            head = served.w3.eth.block_number
            wait_for(lambda: served.w3.eth.block_number >= head + 4, "blocks while the store is locked")
            assert second_run.poll() is None
        last = served.w3.eth.block_number

        def caught_up() -> bool:
            done = served.query(f"SELECT count(*) FROM chain_blocks WHERE number >= {last}")[0][0]
            return bool(done) and not journal.exists()

        wait_for(caught_up, "everything written once the lock is released")
        assert stop(second_run) == 0
    finally:
        served.stop_all()
    assert_everything_written_once(served, first, last, [40, 41, 42])
    # the run started under the lock journals from its start (the first run's journal is there) and
    # may see no failure of its own before the lock goes: the replay is what must be in its log
    assert served.logged("respond.journal_found") and served.logged("respond.journal_replayed")


@dataclass
class OwnPostgres:
    """A PostgreSQL server of the test's own, on a temporary folder and a free port."""

    bin: Path
    folder: Path
    port: int
    user: str | None

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-l", str(self.folder / "log"),
                  "-w", "-o", options, "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _pg_bin() -> Path | None:
    configured = os.environ.get("BREAKGLASS_PG_BIN")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    binaries = _pg_bin()
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as its own user
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            user = None
    if binaries is None or (os.geteuid() == 0 and (user is None or shutil.which("runuser") is None)):
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found; set BREAKGLASS_PG_BIN"
        if os.environ.get("BREAKGLASS_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="bg-pg-"))
    if user is not None:
        shutil.chown(folder, user)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = OwnPostgres(binaries, folder, port, user)
    server._run(str(binaries / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres",
                "--no-sync", "-E", "UTF8")  # fmt: skip
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_postgresql_server_stopped_and_restarted_neither_stops_serve_nor_loses_or_repeats_anything(
    node: Anvil, build: Build, tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    served = serve_venue(node, build, tmp_path, own_postgres.url)
    journal = journal_path(served.url, base=tmp_path)
    try:
        run = served.start()
        wait_for(
            lambda: _has_table(served) and bool(served.query("SELECT 1 FROM chain_blocks")), "checkpoints"
        )
        first = min(n for (n,) in served.query("SELECT number FROM chain_blocks"))
        served.set_leverage(40)
        wait_for(lambda: served.paused(40), "market 40 paused")
        own_postgres.stop()
        served.set_leverage(41)  # the store is down: claimed in the journal, sent
        wait_for(lambda: served.paused(41), "market 41 paused while PostgreSQL is down")
        wait_for(lambda: served.logged("store.unavailable"), "the outage logged")
        served.set_leverage(40)
        head = served.w3.eth.block_number
        wait_for(lambda: served.w3.eth.block_number >= head + 4, "blocks while the store is down")
        assert journal.exists() and run.poll() is None
        own_postgres.start()
        last = served.w3.eth.block_number

        def caught_up() -> bool:
            done = served.query(f"SELECT count(*) FROM chain_blocks WHERE number >= {last}")[0][0]
            return bool(done) and not journal.exists()

        wait_for(caught_up, "everything written once PostgreSQL is back")
        assert stop(run) == 0
    finally:
        served.stop_all()
    assert_everything_written_once(served, first, last, [40, 41])
    assert served.logged("store.recovered")


def _has_table(served: Served) -> bool:
    try:
        served.query("SELECT 1 FROM chain_blocks LIMIT 1")
    except Exception:  # not migrated yet
        return False
    return True
