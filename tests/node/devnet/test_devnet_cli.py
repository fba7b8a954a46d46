"""`breakglass devnet up|status|down` as a user runs it: a real background node and a manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.node


def breakglass(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "breakglass.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_up_deploys_and_writes_a_manifest_then_down_stops_it(tmp_path: Path) -> None:
    state = str(tmp_path / "devnet")
    up = breakglass("devnet", "up", "--state-dir", state)
    try:
        assert up.returncode == 0, up.stderr
        manifest = json.loads((tmp_path / "devnet" / "manifest.json").read_text())
        assert manifest["chain_id"] == 31337
        usd = manifest["contracts"]["usd"]
        code = httpx.post(
            manifest["rpc_url"],
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_getCode",
                "params": [usd["address"], "latest"],
            },
        ).json()["result"]
        assert len(code) > 100
        status = breakglass("devnet", "status", "--state-dir", state)
        assert status.returncode == 0 and "running" in status.stdout
        again = breakglass("devnet", "up", "--state-dir", state)
        assert again.returncode != 0 and "already running" in again.stderr
    finally:
        down = breakglass("devnet", "down", "--state-dir", state)
    assert down.returncode == 0 and "stopped" in down.stdout
    after = breakglass("devnet", "status", "--state-dir", state)
    assert after.returncode == 1 and "not running" in after.stdout


def test_unknown_deployment_set_is_refused(tmp_path: Path) -> None:
    result = breakglass("devnet", "up", "--set", "nope", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "unknown deployment set 'nope'" in result.stderr
