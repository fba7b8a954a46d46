"""Browser tests' world: a real breakglass (pipeline + uvicorn, as ``breakglass serve`` runs them) on
a free port in a background thread, a real SQLite store, and Debian's chromium driven by Playwright.

A uniquely named module (fixtures re-exported by ``conftest.py``), so that other suites' helpers do
not clash with it. Findings are published on the running app's bus, exactly where the detection
engine puts them, so the alert pipeline, the incident stage and the live stream all take part.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.api.server import serve
from breakglass.app import App, build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.domain import Finding
from breakglass.store.db import make_engine, make_sessionmaker
from breakglass.store.migrate import upgrade_async

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ABI = [
    {"type": "function", "name": "totalAssets", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "totalLiabilities", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip
CONFIG = """\
protocol: perpx
store:
  url: sqlite:///{db}
contracts:
  - name: vault
    address: "{vault}"
    abi: vault.abi.json
monitors:
  - id: vault-solvency
    kind: invariant
    title: LP vault stays solvent
    severity: critical
    calls:
      assets: vault.totalAssets()
      liabilities: vault.totalLiabilities()
    expect: assets >= liabilities
  - id: oracle-bounds
    kind: invariant
    title: Mark price within 5% of the oracle
    severity: high
    calls:
      assets: vault.totalAssets()
    expect: assets > 0
"""


@dataclass
class LiveServer:
    """A running breakglass (pipeline + API + dashboard) and handles to drive it from a test."""

    base_url: str
    app: App
    loop: asyncio.AbstractEventLoop
    tokens: dict[Role, str] = field(default_factory=dict)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the server's event loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish_finding(self, finding: Finding) -> None:
        """Hand a finding to the pipeline, as the detection engine does."""
        self.run(self.app.bus.publish(Topics.FINDINGS, finding))

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return self.run(fn())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _make_tokens(url: str) -> dict[Role, str]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            store = TokenStore(session)
            return {role: (await store.create(name, role))[1]
                    for role, name in ((Role.VIEWER, "vic"), (Role.RESPONDER, "alice"),
                                       (Role.ADMIN, "root"))}  # fmt: skip
    finally:
        await engine.dispose()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    db = tmp_path / "breakglass.db"
    (tmp_path / "vault.abi.json").write_text(json.dumps(ABI), encoding="utf-8")
    config_path = tmp_path / "breakglass.yaml"
    config_path.write_text(CONFIG.format(db=db, vault=VAULT), encoding="utf-8")
    url = f"sqlite:///{db}"

    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    holder: dict[str, Any] = {}
    port = _free_port()

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        # Here, not in the fixture: Playwright's sync API keeps an event loop running in the main thread.
        await upgrade_async(url)
        holder["tokens"] = await _make_tokens(url)
        app = build_app(load_config(config_path))
        holder["app"] = app
        api = create_api(app, session_secret="e2e-" + "x" * 40)
        await serve(app, api, port=port, stop=stop, on_started=lambda _s: started.set())

    def thread_main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced to the test through `holder`
            holder["error"] = exc
        finally:
            started.set()
            loop.close()

    thread = threading.Thread(target=thread_main, name="breakglass-serve", daemon=True)
    thread.start()
    assert started.wait(30), "breakglass did not start within 30 s"
    if "error" in holder:
        raise holder["error"]
    yield LiveServer(f"http://127.0.0.1:{port}", holder["app"], loop, holder["tokens"])
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    assert not thread.is_alive(), "breakglass did not stop within 30 s"
    if "error" in holder:
        raise holder["error"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (make setup does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
