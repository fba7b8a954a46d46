"""A crash of the API never takes detection and containment with it (issue 13).

``breakglass serve`` as an operator runs it: the pipeline in the main process, the API in a child.
The child is killed with a real SIGSEGV; the main process logs it, goes on consuming (a finding
published meanwhile becomes an alert, over JetStream, where the test can publish from outside), and
starts a new API process that answers again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from breakglass.bus import Topics
from breakglass.testing import make_finding

BIN = Path(sys.executable).parent / "breakglass"
pytestmark = [pytest.mark.slow]
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _until(condition: Callable[[], T], what: str, within: float = 90) -> T:
    """Poll ``condition()`` until it is truthy (a condition, never a fixed sleep); its value."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {within:g} s")
        time.sleep(0.05)


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path, str]]:
    """``breakglass serve`` with a SQLite store, on JetStream when ``BREAKGLASS_TEST_NATS_URL`` is set."""
    url = os.environ.get("BREAKGLASS_TEST_NATS_URL", "")
    prefix = f"bgproc_{uuid.uuid4().hex[:10]}"
    bus = f"bus:\n  kind: jetstream\n  url: {url}\n  prefix: {prefix}\n" if url else ""
    db = tmp_path / "bg.db"
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: crashvenue\nstore:\n  url: sqlite:///{db}\n{bus}", encoding="utf-8")
    created = subprocess.run([BIN, "tokens", "create", "--role", "viewer", "--name", "prom", "-c", config],
                             capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    (tmp_path / "token").write_text(created.stdout.strip(), encoding="utf-8")
    port = _free_port()
    server = subprocess.Popen(
        [BIN, "serve", config, "--port", str(port)],
        env={**os.environ, "BREAKGLASS_SESSION_SECRET": "p" * 40},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield server, f"http://127.0.0.1:{port}", db, prefix if url else ""
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.communicate(timeout=30)
        if url:
            asyncio.run(_delete_stream(url, prefix))


async def _delete_stream(url: str, prefix: str) -> None:
    from breakglass.bus.jetstream import JetStreamBus

    bus = await JetStreamBus(url, prefix=prefix).connect()
    try:
        await bus._context().delete_stream(prefix)
    finally:
        await bus.close()


async def _publish_finding(url: str, prefix: str, block: int) -> str:
    from breakglass.bus.jetstream import JetStreamBus

    finding = make_finding("after-the-crash", block=block)
    bus = await JetStreamBus(url, prefix=prefix).connect()
    try:
        await bus.publish(Topics.FINDINGS, finding)
    finally:
        await bus.close()
    return finding.fingerprint


def _alerted(db: Path, fingerprint: str) -> bool:
    with sqlite3.connect(db) as conn:
        return bool(
            conn.execute("SELECT count(*) FROM alerts WHERE fingerprint = ?", (fingerprint,)).fetchone()[0]
        )


def test_a_segfault_of_the_api_process_leaves_the_pipeline_running_and_the_api_comes_back(
    served: tuple[subprocess.Popen[str], str, Path, str],
) -> None:
    server, base, db, prefix = served
    _until(lambda: _ready(base), "serve ready")
    (api,) = _until(lambda: _children(server.pid), "the API process")

    os.kill(api, signal.SIGSEGV)
    _until(lambda: api not in _children(server.pid), "the API process gone")
    if prefix:  # while the API is down or restarting: the pipeline consumes, stores, alerts
        fingerprint = asyncio.run(_publish_finding(os.environ["BREAKGLASS_TEST_NATS_URL"], prefix, 7))
        _until(lambda: _alerted(db, fingerprint), "the finding published after the crash alerted")
    assert server.poll() is None, "the pipeline's process died with its API"

    (again,) = _until(lambda: [p for p in _children(server.pid) if p != api], "a new API process")
    _until(lambda: _ready(base), "ready again")
    assert again != api
    token = (db.parent / "token").read_text(encoding="utf-8")
    metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    assert 'breakglass_serve_api_deaths_total{cause="SIGSEGV"} 1.0' in metrics  # the pipeline's counter
    assert "breakglass_api_requests_total" in metrics  # and the API process's own
    server.send_signal(signal.SIGINT)
    _out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "api.process_died" in err and "SIGSEGV" in err
    assert not _children(server.pid)


def test_an_api_that_cannot_listen_at_start_is_an_error_not_a_restart_loop(tmp_path: Path) -> None:
    config = tmp_path / "breakglass.yaml"
    config.write_text(f"protocol: taken\nstore:\n  url: sqlite:///{tmp_path / 'bg.db'}\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [BIN, "serve", config, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 1, run.stderr
    assert "before it listened" in run.stderr
