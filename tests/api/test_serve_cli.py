"""The commands as an operator runs them: ``breakglass tokens create`` prints a token once,
``breakglass serve`` answers with it, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from breakglass.cli.tokens import app as tokens_cli

BIN = Path(sys.executable).parent / "breakglass"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, headers: dict[str, str], within: float = 90) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling a condition (the port accepting), not waiting for a time


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "breakglass.yaml"
    path.write_text(f"protocol: clivenue\nstore:\n  url: sqlite:///{tmp_path / 'bg.db'}\n", encoding="utf-8")
    return path


def test_a_token_created_on_the_command_line_opens_the_served_api_and_ctrl_c_stops_it(config: Path) -> None:
    # In process (the CLI's start-up costs seconds), through the sub-command's own app so that the root
    # callback does not point the process's logging at the runner's captured stream; serve below
    # runs as a real process.
    runner = CliRunner()
    created = runner.invoke(tokens_cli, ["create", "--role", "viewer", "--name", "ops", "-c", str(config)])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("bgt_") and "\n" not in token  # the only thing on stdout: pipe-friendly
    assert "shown only now" in created.stderr

    duplicate = runner.invoke(tokens_cli, ["create", "--role", "admin", "--name", "ops", "-c", str(config)])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr and duplicate.stdout == ""

    port = _free_port()
    env = {**os.environ, "BREAKGLASS_SESSION_SECRET": "s" * 40}
    server = subprocess.Popen(
        [BIN, "serve", config, "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        health = _wait_for(base + "/api/v1/health", {"Authorization": f"Bearer {token}"})
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert httpx.get(base + "/api/v1/health", timeout=5).status_code == 401
        assert "server" not in {k.lower() for k in health.headers}  # no version banner

        # Issue 13: a body nested 100,000 deep killed the process (segfault, exit 139).
        deep = b"[" * 100_000 + b"]" * 100_000
        json_headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        answer = httpx.post(base + "/api/v1/silences", content=deep, headers=json_headers, timeout=10)
        assert answer.status_code == 422, answer.text
        assert (
            httpx.get(base + "/api/v1/health", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )

        # No proxy is trusted unless named: a local process cannot claim HTTPS (a Secure cookie) or
        # another client address with X-Forwarded-* headers.
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        login = httpx.post(base + "/login", data={"token": token}, headers=forwarded, timeout=10)
        assert login.status_code == 303 and "bg_session=" in login.headers["set-cookie"]
        assert "secure" not in login.headers["set-cookie"].lower()
    finally:
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert token not in err  # the token is never logged
