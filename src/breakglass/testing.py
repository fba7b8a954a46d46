"""Hermetic fakes for the I/O boundaries, shipped with the package so plugins can test against them.

Each fake implements one small Protocol of the library (RPC transport, ...) with no network and no
clock; tests of pure logic use these, tests of I/O use the real thing (anvil).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from breakglass.chain.checkpoint import Checkpoint
from breakglass.chain.rpc import TransportError
from breakglass.domain import Block, Finding, Hash32, Severity

__all__ = [
    "FakeClock",
    "FakeTransport",
    "FaultyBus",
    "HttpReceiver",
    "RecordingChannel",
    "RecordingHandler",
    "SqliteLock",
    "drop_lease_buckets",
    "empty_store",
    "eventually",
    "make_finding",
    "postgres_database",
    "service_url",
    "wait_until",
]

Handler = Callable[[str, list[Any]], Any]


class FaultyBus:
    """A bus whose durable subscriptions fail on demand, around a real one: ``fail(topic, durable,
    exc)`` makes the subscription's reader raise ``exc`` from its wait for the next message (as
    nats-py's fetch raises), once; the wrapped subscription is cancelled in its wait, so nothing it
    delivered is left unacknowledged. ``fired`` counts the faults raised."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.fired = 0
        self._armed: dict[tuple[str, str], list[BaseException]] = {}
        self._changed: dict[tuple[str, str], asyncio.Event] = {}

    def fail(self, topic: str, durable: str, exc: BaseException) -> None:
        self._armed.setdefault((topic, durable), []).append(exc)
        self._changed.setdefault((topic, durable), asyncio.Event()).set()

    def __getattr__(self, name: str) -> Any:  # publish, settled, listen, lag, close, connect, ...
        return getattr(self.bus, name)

    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        await self.bus.publish(topic, message, dedup=dedup)

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        return self._reader((topic, durable), self.bus.subscribe(topic, durable))

    async def _reader(self, key: tuple[str, str], inner: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
        while True:
            armed = self._armed.get(key)
            if armed:
                self.fired += 1
                raise armed.pop(0)
            changed = self._changed.setdefault(key, asyncio.Event())
            changed.clear()
            step = asyncio.ensure_future(anext(inner))
            wake = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait({step, wake}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wake.cancel()
            if not step.done():  # a fault was armed while waiting: abandon the wait for it
                step.cancel()
                with suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                continue
            try:
                message = step.result()
            except StopAsyncIteration:
                return
            yield message


class SqliteLock:
    """Another holder of a SQLite database's write lock (``BEGIN EXCLUSIVE``), as a backup tool or an
    open ``sqlite3`` shell: other connections' writes fail with 'database is locked' after their busy
    timeout, reads go on (WAL). In this process by default, or in a child process with
    ``process=True``. ``with SqliteLock(path): ...``, or ``acquire()`` and ``release()``.

    In a coroutine use ``async with SqliteLock(path)``: it takes the lock from a thread, so the event
    loop runs on meanwhile. A plain ``with`` blocks the loop until the lock is taken, and when one of
    this loop's own connections is inside a write transaction (an aiosqlite session between two
    statements), that transaction cannot finish while the loop is blocked: the lock waits its whole
    busy timeout and fails with 'database is locked' (seen in CI under load)."""

    _CHILD = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
        "c.execute('ROLLBACK')\n"
    )

    def __init__(self, path: str | os.PathLike[str], *, process: bool = False) -> None:
        self.path = os.fspath(path)
        self.process = process
        self._conn: Any = None
        self._child: subprocess.Popen[str] | None = None

    def acquire(self) -> SqliteLock:
        if self.process:
            self._child = subprocess.Popen(
                [sys.executable, "-c", self._CHILD, self.path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert self._child.stdout is not None
            if self._child.stdout.readline().strip() != "locked":
                raise RuntimeError(f"the lock holder could not lock {self.path}")
        else:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=30, check_same_thread=False
            )  # taken in a thread by ``async with``, released in another
            self._conn.execute("BEGIN EXCLUSIVE")
        return self

    def release(self) -> None:
        if self._child is not None:
            assert self._child.stdin is not None
            self._child.stdin.close()
            self._child.wait(timeout=30)
            if self._child.stdout is not None:
                self._child.stdout.close()
            self._child = None
        if self._conn is not None:
            self._conn.execute("ROLLBACK")
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SqliteLock:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()

    async def __aenter__(self) -> SqliteLock:
        return await asyncio.to_thread(self.acquire)

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.to_thread(self.release)


class FakeTransport:
    """A JSON-RPC endpoint in memory: ``handler(method, params)`` returns a result or raises.

    Raise ``TransportError`` from the handler to play an unreachable node; return
    ``FakeTransport.error(code, message)`` to answer with a JSON-RPC error object. ``sent`` keeps every
    payload for assertions on batching.
    """

    def __init__(self, handler: Handler, *, name: str = "fake") -> None:
        self._handler = handler
        self.name = name
        self.sent: list[list[dict[str, Any]]] = []
        self.down = False

    @staticmethod
    def error(code: int, message: str) -> dict[str, Any]:
        return {"__error__": {"code": code, "message": message}}

    async def send(self, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.sent.append(payload)
        if self.down:
            raise TransportError(f"{self.name} is down")
        answers = []
        for request in payload:
            result = self._handler(request["method"], list(request["params"]))
            if isinstance(result, dict) and "__error__" in result:
                answers.append({"jsonrpc": "2.0", "id": request["id"], "error": result["__error__"]})
            else:
                answers.append({"jsonrpc": "2.0", "id": request["id"], "result": result})
        return answers

    async def close(self) -> None:
        return None


class RecordingHandler:
    """A follower block handler that remembers every block and every orphaned checkpoint."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.orphaned: list[Checkpoint] = []

    async def on_block(self, block: Block) -> int:
        self.blocks.append(block)
        return 0

    async def on_reorg(self, orphaned: Sequence[Checkpoint]) -> None:
        self.orphaned.extend(orphaned)

    @property
    def numbers(self) -> list[int]:
        return [b.number for b in self.blocks]


async def wait_until(condition: Callable[[], bool], within: float = 30.0, what: str = "condition") -> None:
    """Wait for a condition, not for a time: polls it, raises ``TimeoutError`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached within {within:g} s")
        await asyncio.sleep(0.01)


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "condition"
) -> None:
    """``wait_until`` for async conditions (a database state): polls, never sleeps a fixed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached within {within:g} s")
        await asyncio.sleep(0.01)


class FakeClock:
    """A ``breakglass.clock.Clock`` that moves only when told to."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def make_finding(
    monitor_id: str = "oracle-deviation",
    *,
    severity: Severity = Severity.HIGH,
    block: int = 100,
    tx_hash: str | None = None,
    labels: Mapping[str, str] | None = None,
    evidence: Mapping[str, Any] | None = None,
    title: str | None = None,
    block_hash: str | None = None,
    chain_id: int = 31337,
) -> Finding:
    """A finding with plausible defaults; distinct (monitor, block, tx, labels) give distinct
    fingerprints."""
    return Finding(
        monitor_id=monitor_id,
        severity=severity,
        chain_id=chain_id,
        block_number=block,
        title=title or f"{monitor_id} at block {block}",
        tx_hash=Hash32(tx_hash) if tx_hash else None,
        block_hash=Hash32(block_hash) if block_hash else None,
        labels=dict(labels or {}),
        evidence=dict(evidence or {}),
    )


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class HttpReceiver:
    """A real HTTP server on 127.0.0.1 (a thread) that records POSTs: the webhook end of tests.

    ``statuses`` are answered in order (then 200), so a test can make the first attempts fail.
    """

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.requests: list[ReceivedRequest] = []
        self.statuses = list(statuses)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(ReceivedRequest(self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class RecordingChannel:
    """A ``breakglass.notify.channels.Channel`` in memory: keeps what it was sent; ``failures``
    (``NotifyError``s) are raised by the first sends, in order."""

    def __init__(self, name: str = "fake", failures: Sequence[Exception] = ()) -> None:
        self.name = name
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.failures = list(failures)
        self.closed = False

    async def send(self, title: str, body: str, payload: Mapping[str, Any]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((title, body, dict(payload)))

    async def close(self) -> None:
        self.closed = True


async def drop_lease_buckets(url: str, prefix: str) -> None:
    """Delete the NATS KV buckets (their ``KV_`` streams) a test's lease backends made under ``prefix``."""
    import nats  # the nats extra: only tests of the NATS lease call this

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            name = info.config.name
            if name is not None and name.startswith(f"KV_{prefix}"):
                await js.delete_stream(name)
    finally:
        await client.close()


def service_url(env: str, what: str, example: str) -> str:
    """The URL of a service a test needs (PostgreSQL, NATS) from ``env``. Unset: the test is skipped
    with the instruction, or fails when ``BREAKGLASS_REQUIRE_SERVICES=1`` (CI) forbids skipping."""
    import pytest  # only tests call this; pytest is a development dependency

    url = os.environ.get(env)
    if not url:
        message = f"{what} tests need {env} (e.g. {env}={example})"
        if os.environ.get("BREAKGLASS_REQUIRE_SERVICES") == "1":
            pytest.fail(message + "; BREAKGLASS_REQUIRE_SERVICES=1 forbids skipping them")
        pytest.skip(message)
    return url


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url`` (a unique name), dropped
    afterwards even while connections remain; yields its URL."""
    import psycopg  # the [postgres] extra
    from sqlalchemy.engine import make_url

    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"bg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def empty_store(engine: Any) -> None:
    """Delete every row of a migrated store (an ``AsyncEngine``), leaving it as migrated: faster
    than a new database per test."""
    from sqlalchemy import delete, insert

    from breakglass.store.tables import metadata
    from breakglass.timeline import GENESIS, TimelineHead

    async with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(delete(table))
        await conn.execute(insert(TimelineHead).values(id=1, seq=0, hash=GENESIS))  # as migrated
