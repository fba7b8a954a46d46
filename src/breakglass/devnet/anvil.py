"""anvil as a managed subprocess: start on a free port in any block mode, health-check, stop cleanly.

A started node never outlives its owner by accident: on Linux the child gets a parent-death signal, an
``atexit`` hook stops every node still running, and ``Anvil`` is a context manager. ``detach=True``
(used by ``breakglass devnet up``) is the one deliberate exception: the node then lives until
``devnet down``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import enum
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from breakglass.devnet.toolchain import find_anvil
from breakglass.errors import DevnetError

__all__ = ["DEV_MNEMONIC", "Anvil", "AnvilOptions", "BlockMode", "PublicBlocks"]

DEV_MNEMONIC = "test test test test test test test test test test test junk"
_LISTENING = re.compile(r"Listening on (?P<host>[\d.]+):(?P<port>\d+)")
_RUNNING: set[Anvil] = set()


class BlockMode(enum.StrEnum):
    AUTO = "auto"
    """A block per transaction, at once (no mempool window: like private order flow)."""
    INTERVAL = "interval"
    """A block every ``block_time`` seconds; pending transactions wait in a fee-ordered mempool."""
    MANUAL = "manual"
    """No mining until ``evm_mine`` is called."""


@dataclass(frozen=True, slots=True)
class AnvilOptions:
    mode: BlockMode = BlockMode.AUTO
    block_time: float = 1.0
    chain_id: int = 31337
    accounts: int = 10
    balance_eth: int = 10_000
    mnemonic: str = DEV_MNEMONIC
    hardfork: str = "prague"
    gas_limit: int | None = None
    code_size_limit: int | None = None
    port: int = 0
    host: str = "127.0.0.1"
    extra_args: tuple[str, ...] = field(default=())
    fork_url: str | None = None
    """Fork this node's state (``--fork-url``): ``chain_id`` must then be the forked chain's, and
    ``hardfork`` is not passed (the fork follows the forked chain's)."""
    fork_block: int | None = None
    """The block to fork at (``--fork-block-number``); the forked node's head when None."""

    def argv(self, binary: Path) -> list[str]:
        args = [
            str(binary),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth),
            "--mnemonic", self.mnemonic,
            "--order", "fees",
        ]  # fmt: skip
        if self.fork_url is None:  # a fork takes the forked chain's rules at its block
            args += ["--hardfork", self.hardfork]
        if self.mode is BlockMode.INTERVAL:
            args += ["--block-time", f"{self.block_time:g}"]
        elif self.mode is BlockMode.MANUAL:
            args += ["--no-mining"]
        if self.fork_url is not None:
            args += ["--fork-url", self.fork_url]
            if self.fork_block is not None:
                args += ["--fork-block-number", str(self.fork_block)]
        if self.gas_limit is not None:
            args += ["--gas-limit", str(self.gas_limit)]
        if self.code_size_limit is not None:
            args += ["--code-size-limit", str(self.code_size_limit)]
        args += list(self.extra_args)
        return args


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the parent dies.

    Linux ties this to the *thread* that forked: start long-lived nodes from a thread that outlives
    them (the main thread, or the event loop's), not from a short-lived worker thread.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Anvil:
    """One anvil node. The constructor does nothing; ``start()`` launches and waits until it answers."""

    def __init__(
        self,
        options: AnvilOptions | None = None,
        *,
        binary: Path | None = None,
        log_path: Path | None = None,
        detach: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        self.options = options or AnvilOptions()
        self._binary = binary
        self._log_path = log_path
        self._detach = detach
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._own_log = False
        self._states: Path | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise DevnetError("anvil is not running")
        return f"http://{self.options.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def start(self) -> Anvil:
        if self._proc is not None:
            raise DevnetError("anvil already started")
        binary = self._binary or find_anvil()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="breakglass-anvil-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
            self._own_log = True
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self._log_path.open("wb")
        # anvil spills old states to disk (by default under ~/.foundry, never cleaned when a long run
        # is killed: GBs per drill). Give each node its own folder and remove it with the node.
        if self._detach:
            self._states = self._log_path.parent / "anvil-states"
            self._states.mkdir(exist_ok=True)
        else:
            self._states = Path(tempfile.mkdtemp(prefix="breakglass-anvil-states-"))
        kwargs: dict[str, Any] = {}
        if self._detach:
            kwargs["start_new_session"] = True
        elif sys.platform.startswith("linux"):
            kwargs["preexec_fn"] = _die_with_parent
        self._proc = subprocess.Popen(
            [*self.options.argv(binary), "--cache-path", str(self._states)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
        if not self._detach:
            _RUNNING.add(self)
        try:
            self.port = self._wait_for_port()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> int:
        assert self._proc is not None and self._log_path is not None
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self._log_path.read_text(errors="replace")[-2000:]
                raise DevnetError(f"anvil exited with code {self._proc.returncode}: {tail}")
            match = _LISTENING.search(self._log_path.read_text(errors="replace"))
            if match:
                return int(match.group("port"))
            time.sleep(0.02)
        raise DevnetError(f"anvil did not report its port within {self._startup_timeout:g} s")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                chain_id = self.rpc("eth_chainId")
                if int(chain_id, 16) != self.options.chain_id:
                    raise DevnetError(f"anvil answered chain id {chain_id}, not {self.options.chain_id}")
                return
            except (httpx.HTTPError, DevnetError) as exc:
                last = exc
                time.sleep(0.02)
        raise DevnetError(f"anvil did not answer eth_chainId within {self._startup_timeout:g} s: {last}")

    def rpc(self, method: str, *params: Any) -> Any:
        """One plain JSON-RPC call; for devnet control (mining, snapshots), not for the hot path."""
        response = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
            timeout=30.0,
        )
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise DevnetError(f"{method}: {body['error'].get('message')}")
        return body["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc("evm_revert", snapshot_id):
            raise DevnetError(f"evm_revert({snapshot_id}) failed")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the node, then kill it if it does not exit in ``timeout`` seconds. Idempotent."""
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if not self._detach:
            if self._states is not None:
                shutil.rmtree(self._states, ignore_errors=True)
            if self._own_log and self._log_path is not None:
                self._log_path.unlink(missing_ok=True)
        self._states = None
        self.port = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class PublicBlocks:
    """A public, fee-ordered mempool with a fixed window: automine off, and a thread that mines a block
    ``block_time`` seconds after a transaction first waits in the pool. Everyone watching the mempool
    gets the whole window from a broadcast, as when an attacker broadcasts right after a block; with
    interval mining the broadcast fell anywhere in the interval, and a sender slowed by a loaded
    machine shortened the window to nothing. ``start()``/``stop()`` or a ``with`` block; ``stop`` mines
    what is still pending and turns automine back on."""

    def __init__(self, node: Anvil, block_time: float = 1.0, *, poll: float = 0.01) -> None:
        self.node = node
        self.block_time = block_time
        self.poll = poll
        self.mined = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def _pending(self) -> int:
        status = self.node.rpc("txpool_status")
        return int(status.get("pending", "0x0"), 16)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._pending():
                    self._stop.wait(self.poll)
                    continue
                if self._stop.wait(self.block_time):
                    return
                self.node.rpc("evm_mine")
                self.mined += 1
        except BaseException as exc:  # seen by stop(): a miner that died must not pass unnoticed
            self.error = exc

    def start(self) -> PublicBlocks:
        self.node.rpc("evm_setIntervalMining", 0)
        self.node.rpc("evm_setAutomine", False)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="public-blocks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=30)
        if self._pending():
            self.node.rpc("evm_mine")
        self.node.rpc("evm_setAutomine", True)
        if self.error is not None:
            raise DevnetError(f"the public-mempool miner failed: {self.error}") from self.error

    def __enter__(self) -> PublicBlocks:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for node in list(_RUNNING):
        node.stop(timeout=2.0)
