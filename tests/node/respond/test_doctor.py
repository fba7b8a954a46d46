"""``breakglass doctor`` on anvil: a healthy deployment passes every check; each way of breaking one
(wrong chain, a contract without code, a guardian without funds or without the role a playbook needs,
a store not migrated, a notification endpoint that is down) is reported, and the command exits 1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from respond_support import GUARDIAN_ENV, PAUSE_ONLY, Venue, write_config
from typer.testing import CliRunner

from breakglass.cli.doctor import doctor as doctor_command
from breakglass.config import load_config
from breakglass.doctor import run_doctor
from breakglass.store.migrate import upgrade_async

pytestmark = pytest.mark.node

GHOST = "0x00000000000000000000000000000000000000aa"

ADMIN_ONLY = """
- id: pause
  match: {monitors: [oracle-deviation]}
  actions:
    - {kind: call, id: pause-venue, contract: venue, function: pause, once_per: target}
    - {kind: call, id: cap-leverage, contract: venue, function: setMaxLeverage, args: [2]}
    - {kind: call, id: block, contract: venue, function: blockAccount, args: ["{evidence.attacker}"]}
"""


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _channels(port: int, dead: bool = False) -> str:
    url = "http://127.0.0.1:9/down" if dead else f"http://127.0.0.1:{port}/hook"
    return f"notifications:\n  channels:\n    - {{name: ops, kind: webhook, url: '{url}'}}\n"


async def test_a_healthy_deployment_passes_every_check(
    venue: Venue, listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARDIAN_ENV, venue.guardian_key)
    path = write_config(venue.manifest.parent, PAUSE_ONLY, extra=_channels(listening))
    config = load_config(path)
    await upgrade_async(config.settings.store.url)
    checks = await run_doctor(config)
    assert [c for c in checks if not c.ok] == []
    areas = {c.area for c in checks}
    assert areas == {"rpc", "contracts", "guardian", "playbooks", "store", "notifications"}
    [simulated] = [c for c in checks if c.area == "playbooks"]
    assert "venue.pause()" in simulated.detail and "gas" in simulated.detail


class _OtherChain(BaseHTTPRequestHandler):
    """A JSON-RPC endpoint of another chain (chain id 1)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        out = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": "0x1"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def other_chain() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherChain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_every_broken_part_is_named_and_the_command_exits_1(
    venue: Venue, listening: int, other_chain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARDIAN_ENV, venue.guardian_key)
    path = write_config(venue.manifest.parent, PAUSE_ONLY, extra=_channels(listening, dead=True))
    rpc = f"chain: {{poll_interval: 0.05, rpc: ['{venue.node.url}', '{other_chain}', 'http://127.0.0.1:9/']}}"
    text = path.read_text(encoding="utf-8").replace("chain: {poll_interval: 0.05}", rpc)
    path.write_text(text, encoding="utf-8")  # and the store is never migrated

    cli = typer.Typer()
    cli.command()(doctor_command)
    result = CliRunner().invoke(cli, [str(path)], env={"COLUMNS": "250"})
    out = result.stdout
    assert result.exit_code == 1, (out, result.stderr, result.exception)
    assert "chain id 1, expected 31337" in out
    assert "http://127.0.0.1:9/" in out and "every endpoint failed" in out
    assert "run `breakglass db upgrade`" in out
    assert "127.0.0.1:9 unreachable" in out
    assert "4 of 9 checks failed" in out  # two endpoints, the store, the channel
    assert "venue.pause() simulates from the guardian" in out  # the live endpoint still serves the rest
    assert venue.guardian_key.removeprefix("0x") not in out


async def test_code_funds_and_roles_are_checked_on_the_right_chain(
    venue: Venue, listening: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(GUARDIAN_ENV, venue.guardian_key)
    venue.node.rpc("anvil_setBalance", venue.guardian, "0x0")
    abi = tmp_path / "ghost.json"
    abi.write_text(json.dumps([]), encoding="utf-8")
    ghost = f"contracts:\n  - {{name: ghost, address: '{GHOST}', abi: '{abi}'}}\n"
    path = write_config(venue.manifest.parent, ADMIN_ONLY, extra=_channels(listening) + ghost)
    config = load_config(path)
    await upgrade_async(config.settings.store.url)
    checks = {c.subject: c for c in await run_doctor(config)}
    assert not checks["ghost"].ok and checks["ghost"].detail == f"no code at {GHOST}"
    assert checks["venue"].ok
    assert not checks[f"balance of {venue.guardian}"].ok
    assert not checks["pause.cap-leverage"].ok and "missing role?" in checks["pause.cap-leverage"].detail
    assert checks["pause.block"].ok  # a templated address argument is simulated with a placeholder
    assert checks["pause.pause-venue"].ok
