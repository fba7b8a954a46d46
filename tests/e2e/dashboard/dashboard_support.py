"""Browser tests' world: a real breakglass (pipeline + uvicorn, as ``breakglass serve`` runs them) on
a free port in a background thread, a real SQLite store, and Debian's chromium driven by Playwright.

A uniquely named module (fixtures re-exported by ``conftest.py``), so that other suites' helpers do
not clash with it. Findings are published on the running app's bus, exactly where the detection
engine puts them, so the alert pipeline, the incident stage and the live stream all take part.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from playwright.sync_api import Page, expect

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.api.server import ServerThread
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

    thread: ServerThread
    tokens: dict[Role, str]

    @property
    def base_url(self) -> str:
        return self.thread.base_url

    @property
    def app(self) -> App:
        assert self.thread.app is not None
        return self.thread.app

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the server's event loop and wait for its result."""
        return self.thread.run(coro, timeout)

    def publish_finding(self, finding: Finding) -> None:
        """Hand a finding to the pipeline, as the detection engine does."""
        self.run(self.app.bus.publish(Topics.FINDINGS, finding))


async def make_tokens(url: str) -> dict[Role, str]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            store = TokenStore(session)
            return {role: (await store.create(name, role))[1]
                    for role, name in ((Role.VIEWER, "vic"), (Role.RESPONDER, "alice"),
                                       (Role.ADMIN, "root"))}  # fmt: skip
    finally:
        await engine.dispose()


def write_config(folder: Path) -> Path:
    (folder / "vault.abi.json").write_text(json.dumps(ABI), encoding="utf-8")
    config_path = folder / "breakglass.yaml"
    config_path.write_text(CONFIG.format(db=folder / "breakglass.db", vault=VAULT), encoding="utf-8")
    return config_path


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    config_path = write_config(tmp_path)
    tokens: dict[Role, str] = {}

    async def build() -> tuple[App, FastAPI]:
        # On the server's loop, not here: Playwright's sync API keeps a loop running in this thread.
        loaded = load_config(config_path)
        await upgrade_async(loaded.settings.store.url)
        tokens.update(await make_tokens(loaded.settings.store.url))
        app = build_app(loaded)
        return app, create_api(app, session_secret="e2e-" + "x" * 40)

    thread = ServerThread(build).start()
    try:
        yield LiveServer(thread, tokens)
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser per test module. Not per session: Playwright's sync API keeps an event loop
    running in the main thread while it is open, and every async test after it would then fail."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (make setup does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Conditions, not sleeps: each expectation polls until true; 10 s (not 5) leaves room for a busy CI.
expect.set_options(timeout=10_000)

_SHOTS = os.environ.get("BREAKGLASS_SCREENSHOTS")
SCREENSHOTS = Path(_SHOTS) if _SHOTS else None
"""Set BREAKGLASS_SCREENSHOTS=folder to keep full-page screenshots of the key moments."""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context; the test fails if the page logged a script or CSP error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if msg.type == "error" and _unexpected(msg.text) else None,
    )
    yield page
    seen = list(errors)  # what the page logged while in use: closing it aborts htmx requests in flight
    context.close()
    assert seen == [], seen


def _unexpected(text: str) -> bool:
    # Answers the tests provoke on purpose (a refused login, a 403/422 fetch) are logged by chromium as
    # "Failed to load resource"; a panel refresh still in flight when a button's request replaces it
    # (hx-sync="#incident-panel:replace") is aborted by design, which htmx logs as htmx:sendAbort with
    # its htmx:afterRequest; anything else (a CSP violation, a script error, htmx:sendError, a
    # timeout) is a defect.
    if text.startswith(("htmx:sendAbort", "htmx:afterRequest")):
        return False
    return not text.startswith("Failed to load resource")


def sign_in(page: Page, server: LiveServer, role: Role) -> None:
    page.goto(server.base_url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("#token", server.tokens[role])
    page.click("button[type=submit]")
    expect(page.locator("header .who")).to_contain_text(str(role))
    expect(page.locator("#live")).to_have_text("live")  # the event stream is connected


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
