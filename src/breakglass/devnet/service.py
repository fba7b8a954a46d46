"""``breakglass devnet up|down|status``: one long-lived local chain with a deployment, between commands.

The running node is described by ``<state_dir>/devnet.json`` (pid, URL, mode); the deployment by
``<state_dir>/manifest.json``, which configurations name in ``deployment:``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import DEPLOYMENT_SETS, Deployer
from breakglass.devnet.manifest import Manifest
from breakglass.devnet.solc import compile_contracts
from breakglass.errors import DevnetError

__all__ = ["DevnetStatus", "devnet_down", "devnet_status", "devnet_up"]


@dataclass(frozen=True, slots=True)
class DevnetStatus:
    running: bool
    pid: int | None
    url: str | None
    mode: str | None
    block_number: int | None
    manifest_path: Path | None
    contracts: int


def _state_file(state_dir: Path) -> Path:
    return state_dir / "devnet.json"


def devnet_up(
    state_dir: Path,
    *,
    deployment_set: str = "toolchain",
    mode: BlockMode = BlockMode.AUTO,
    block_time: float = 1.0,
    port: int = 0,
) -> tuple[DevnetStatus, Manifest]:
    """Start a detached anvil, deploy ``deployment_set`` and write the manifest."""
    if deployment_set not in DEPLOYMENT_SETS:
        known = ", ".join(sorted(DEPLOYMENT_SETS))
        raise DevnetError(f"unknown deployment set {deployment_set!r} (known: {known})")
    current = devnet_status(state_dir)
    if current.running:
        raise DevnetError(f"a devnet is already running (pid {current.pid}, {current.url})")
    build = compile_contracts()
    node = Anvil(
        AnvilOptions(mode=mode, block_time=block_time, port=port),
        log_path=state_dir / "anvil.log",
        detach=True,
    ).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        if mode is BlockMode.MANUAL:
            w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        DEPLOYMENT_SETS[deployment_set](deployer)
        if mode is BlockMode.MANUAL:
            w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        manifest = deployer.manifest(node.url, deployment_set=deployment_set, build=build.key)
        manifest_path = state_dir / "manifest.json"
        manifest.write(manifest_path)
        _state_file(state_dir).write_text(
            json.dumps({"pid": node.pid, "url": node.url, "mode": mode.value}), encoding="utf-8"
        )
    except BaseException:
        node.stop()
        raise
    return devnet_status(state_dir), manifest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def devnet_status(state_dir: Path) -> DevnetStatus:
    path = _state_file(state_dir)
    if not path.is_file():
        return DevnetStatus(False, None, None, None, None, None, 0)
    state = json.loads(path.read_text(encoding="utf-8"))
    pid, url = int(state["pid"]), str(state["url"])
    manifest_path = state_dir / "manifest.json"
    contracts = len(Manifest.read(manifest_path).contracts) if manifest_path.is_file() else 0
    block: int | None = None
    running = _alive(pid)
    if running:
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            body = httpx.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                timeout=5.0,
            ).json()
            block = int(body["result"], 16)
    return DevnetStatus(
        running, pid, url, state.get("mode"), block,
        manifest_path if manifest_path.is_file() else None, contracts,
    )  # fmt: skip


def devnet_down(state_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the devnet started by ``devnet_up``. Returns whether one was running."""
    path = _state_file(state_dir)
    if not path.is_file():
        return False
    pid = int(json.loads(path.read_text(encoding="utf-8"))["pid"])
    was_running = _alive(pid)
    if was_running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    path.unlink()
    shutil.rmtree(state_dir / "anvil-states", ignore_errors=True)
    return was_running
