"""The wheel works alone: built by ``python -m build``, installed with its dependencies into a fresh
virtual environment outside the repository, run with a PATH holding nothing but that environment (no
Node.js, no checkout), it checks a configuration, serves the API and the dashboard to Chromium, and
runs a defended drill from the contracts and examples it carries.

The wheel is built once per source tree (cached under ``.breakglass/cache/wheel/<digest>``: the
digest covers every file that goes into it) and installed with uv from its cache, so a run where
nothing changed spends its time in the CLI, not in packaging.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".breakglass" / "cache" / "wheel"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
SOURCES = ("src", "examples", "contracts", "deploy")
FILES = ("pyproject.toml", "setup.py", "package-lock.json", "README.md", "LICENSE")


def _digest() -> str:
    """Of every file a wheel is made from (what git tracks and what is not ignored alike)."""
    h = hashlib.sha256()
    paths = [ROOT / f for f in FILES]
    for folder in SOURCES:
        paths += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        if path.suffix in (".pyc",) or path.name.endswith(".egg-info"):
            continue
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:24]


@pytest.fixture(scope="module")
def wheel() -> Path:
    folder = CACHE / _digest()
    built = sorted(folder.glob("breakglass-*.whl"))
    if built:
        return built[0]
    staging = CACHE / f"tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' build/lib would keep deleted modules
    run = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(staging), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(folder)
    except OSError:  # another process built the same digest meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(folder.glob("breakglass-*.whl"))[0]


def test_the_wheel_carries_the_license_its_metadata_names(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        licenses = [n for n in names if re.search(r"\.dist-info/licenses/LICENSE$", n)]
        assert licenses, names
        assert "Apache License" in archive.read(licenses[0]).decode()
    assert "License-Expression: Apache-2.0" in metadata


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies (uv, from its cache)."""
    uv = Path(sys.executable).with_name("uv")
    folder = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(folder)], check=True, timeout=120)
    install = subprocess.run(
        [str(uv), "pip", "install", "-q", "--python", str(folder / "bin" / "python"), str(wheel)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return folder


def _env(venv: Path, home: Path, **extra: str) -> dict[str, str]:
    """Only the environment's own bin on PATH: no node, no anvil, no checkout to find."""
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
    return {**keep, "PATH": str(venv / "bin"), "HOME": str(home), "COLUMNS": "200", **extra}


def _cli(venv: Path, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "breakglass"), *args], cwd=cwd, env=_env(venv, cwd, **env),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PROBE = """
import json
from pathlib import Path
import breakglass
from breakglass.devnet import solc, toolchain
from breakglass.web import mount
found = {
    "rules": (Path(breakglass.__file__).parent / "deploy/prometheus/breakglass.rules.yml").is_file(),
    "examples": sorted(p.name for p in toolchain.examples_dir().iterdir()),
    "where": str(toolchain.examples_dir()),
    "htmx": mount.HTMX.is_file(),
    "contracts": len(solc.compile_contracts().artifacts),
}
print(json.dumps(found))
"""


DEPLOYMENT = {
    "chain_id": 31337,
    "rpc_url": "http://127.0.0.1:8545",
    "contracts": {
        "vault": {
            "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "abi": [
                {"type": "function", "name": "pause", "inputs": [], "outputs": [],
                 "stateMutability": "nonpayable"},
                {"type": "function", "name": "paused", "inputs": [],
                 "outputs": [{"name": "", "type": "bool"}], "stateMutability": "view"},
            ],
        }
    },
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "ops"  # far from the checkout: nothing there to find
    folder.mkdir()
    return folder


def test_the_installed_cli_checks_a_configuration_and_serves_the_dashboard_to_chromium(
    venv: Path, home: Path
) -> None:
    # what the wheel carries, found without the repository
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE], cwd=home, env=_env(venv, home),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert {"venue.yaml", "playbooks.venue.yaml"} <= set(found["examples"])
    assert found["where"].startswith(str(venv)), found["where"]  # package data, not the repository
    assert found["htmx"] and found["contracts"] > 10 and found["rules"]

    config = home / "breakglass.yaml"
    config.write_text(f"protocol: wheelvenue\nstore:\n  url: sqlite:///{home / 'bg.db'}\n", encoding="utf-8")
    checked = _cli(venv, home, "check", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = home / "broken.yaml"
    broken.write_text("protocol: wheelvenue\nstroe: {}\n", encoding="utf-8")
    refused = _cli(venv, home, "check", str(broken))
    assert refused.returncode == 2 and "stroe" in refused.stdout + refused.stderr

    # init writes a starter configuration from a deployment's ABIs, which check accepts
    (home / "deployment.json").write_text(json.dumps(DEPLOYMENT), encoding="utf-8")
    started = _cli(venv, home, "init", "deployment.json", "-o", "started.yaml")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "pause" in (home / "started.yaml").read_text(encoding="utf-8")
    rechecked = _cli(venv, home, "check", "started.yaml")
    assert rechecked.returncode == 0, rechecked.stdout + rechecked.stderr

    created = _cli(venv, home, "tokens", "create", "--role", "admin", "--name", "ops", "-c", str(config))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [str(venv / "bin" / "breakglass"), "serve", str(config), "--port", str(port)], cwd=home,
        env=_env(venv, home, BREAKGLASS_SESSION_SECRET="w" * 40),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_for(base + "/readyz", server)
        deadline = time.monotonic() + 60
        while ready.status_code != 200 and time.monotonic() < deadline:  # the stages start after it listens
            time.sleep(0.1)
            ready = httpx.get(base + "/readyz", timeout=5)
        assert ready.json() == {"status": "ok", "checks": {"store": "ok", "bus": "ok: 4 consumers"}}
        _drive_dashboard(base, token)
        metrics = httpx.get(base + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert metrics.status_code == 200
        assert 'breakglass_ready{check="store"} 1.0' in metrics.text
        assert re.search(
            r'breakglass_api_requests_total\{method="GET",route="/",status="200"\} [1-9]', metrics.text
        )
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err[-3000:]
    assert token not in err


def _wait_for(url: str, server: subprocess.Popen[str], within: float = 60) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                _out, err = server.communicate(timeout=10)
                pytest.fail(f"breakglass serve did not answer: {err[-3000:]}")
            time.sleep(0.1)  # polling a condition: the port accepting


def _drive_dashboard(base: str, token: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # "Failed to load resource" is the 401 of the page before signing in (and a favicon's 404)
            page.on(
                "console",
                lambda msg: (
                    errors.append(msg.text)
                    if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                    else None
                ),
            )
            page.goto(base + "/")
            expect(page).to_have_url(re.compile(r"/login\?next=/$"))
            page.fill("#token", token)
            page.click("button[type=submit]")
            expect(page.locator("header .who")).to_contain_text("admin", timeout=15_000)
            expect(page.locator("#live")).to_have_text("live", timeout=15_000)  # htmx + live.js + SSE
            assert page.evaluate("typeof htmx.version") == "string"
        finally:
            browser.close()
    assert errors == [], errors


@pytest.mark.node
def test_the_installed_wheel_runs_a_defended_drill_without_node_or_a_checkout(venv: Path, home: Path) -> None:
    from breakglass.devnet.toolchain import find_anvil  # the test's own anvil, handed over by path

    out = home / "drill.json"
    drill = _cli(
        venv, home, "drill", "run", "--scenario", "forwarder-oracle", "--mode", "public", "--json", str(out),
        BREAKGLASS_ANVIL=str(find_anvil()),
    )  # fmt: skip
    assert drill.returncode == 0, drill.stdout[-3000:] + drill.stderr[-3000:]
    [row] = json.loads(out.read_text(encoding="utf-8"))
    assert row["baseline_loss_usd"] > 1_000_000
    assert row["loss_usd"] <= 0, row


@pytest.fixture(autouse=True)
def _no_checkout_hint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("BREAKGLASS_HOME", raising=False)
    yield
