"""The managed anvil: block modes, health, and no orphan process whatever happens to its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.errors import DevnetError

pytestmark = pytest.mark.node

ALICE = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
BOB = "0x70997970C51812dc3A010C7d01b50e0d4dc79C8"


def block_number(node: Anvil) -> int:
    return int(node.rpc("eth_blockNumber"), 16)


def send(node: Anvil) -> str:
    return str(node.rpc("eth_sendTransaction", {"from": ALICE, "to": BOB + "8", "value": "0x1"}))


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_automine_makes_a_block_per_transaction(anvil: Anvil) -> None:
    assert block_number(anvil) == 0
    first, second = send(anvil), send(anvil)
    # anvil answers eth_sendTransaction once the transaction is in its pool; the block follows at once
    # but not before the answer (seen: block 1 of 2 read under load)
    wait_until(lambda: block_number(anvil) == 2)
    blocks = {int(anvil.rpc("eth_getTransactionReceipt", tx)["blockNumber"], 16) for tx in (first, second)}
    assert blocks == {1, 2}


def test_manual_mode_holds_transactions_until_mined(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(mode=BlockMode.MANUAL)
    tx = send(node)
    pending = node.rpc("txpool_content")["pending"]
    assert any(tx in str(v) for v in pending.values())
    assert block_number(node) == 0
    node.mine()
    assert block_number(node) == 1
    assert node.rpc("eth_getTransactionReceipt", tx)["status"] == "0x1"


def test_interval_mode_mines_on_its_own(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(mode=BlockMode.INTERVAL, block_time=0.2)
    wait_until(lambda: block_number(node) >= 3)


def test_snapshot_and_revert_restore_state(anvil: Anvil) -> None:
    snap = anvil.snapshot()
    send(anvil)
    anvil.revert(snap)
    assert block_number(anvil) == 0


def test_stop_is_idempotent_and_frees_the_port(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory()
    url, pid = node.url, node.pid
    assert pid is not None
    node.stop()
    node.stop()
    assert not pid_alive(pid)
    with pytest.raises(httpx.HTTPError):
        httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)


def test_a_bad_option_fails_start_with_anvils_message() -> None:
    node = Anvil(AnvilOptions(hardfork="no-such-fork"))
    with pytest.raises(DevnetError, match="anvil exited"):
        node.start()
    assert not node.is_running()


def _run_child(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_no_orphan_after_a_failing_test(tmp_path: Path) -> None:
    """A test that fails while its node runs still leaves no anvil behind."""
    pidfile = tmp_path / "pid"
    test_file = tmp_path / "test_fails.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path

            def test_fails(anvil):
                Path({str(pidfile)!r}).write_text(str(anvil.pid))
                assert False, "deliberate failure"
            """
        )
    )
    conftest = Path(__file__).resolve().parents[2] / "conftest.py"
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deliberate failure" in result.stdout
    assert not pid_alive(int(pidfile.read_text()))


@pytest.mark.parametrize("how", ["exception", "sigterm", "sigkill"])
def test_no_orphan_when_the_owner_dies(tmp_path: Path, how: str) -> None:
    child = _run_child(
        tmp_path,
        f"""
        import os, signal, sys, time
        from breakglass.devnet.anvil import Anvil
        node = Anvil().start()
        print(node.pid, flush=True)
        sys.stdin.readline()  # the test has seen the node running: the owner may die now
        if {how!r} == "exception":
            raise SystemExit("owner crashed")
        time.sleep(120)
        """,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        anvil_pid = int(child.stdout.readline())
        assert pid_alive(anvil_pid)
        child.stdin.write("die\n")
        child.stdin.flush()
        if how == "sigterm":
            child.send_signal(signal.SIGTERM)
        elif how == "sigkill":
            child.kill()
        child.wait(timeout=30)
    finally:
        child.kill()  # a no-op once it has exited; a failed check leaves no child for a later test
        child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()
    wait_until(lambda: not pid_alive(anvil_pid))


def test_a_stopped_node_leaves_no_state_folder_or_log_behind(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory()
    states, log = node._states, node.log_path
    assert states is not None and states.is_dir() and log is not None and log.is_file()
    send(node)
    node.stop()
    assert not states.exists() and not log.exists()
