"""Pre-execution containment through the simulate work queue: the pending strike is judged by one of
two ``simulate`` processes (each watching the mempool, submitting to the JetStream work queue, working
its items), and the responder in this process, which judges nothing itself, front-runs it with the
pause in the same block; the scenario loses nothing. The simulate processes are ``breakglass serve
CONFIG --role simulate`` (on a PostgreSQL store, as a split requires), and ``simulate_role.py`` (the
same stages without the server around them).

Needs anvil and ``BREAKGLASS_TEST_NATS_URL`` (CI sets it); the ``serve`` case also
``BREAKGLASS_TEST_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eth_account import Account
from mempool_defense import Defense, defended_config, guardian_txs, play_strike_in_public_mempool
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import FindingStage, Severity
from breakglass.drills.scenarios import SCENARIOS, Phase, ScenarioRun
from breakglass.messages.pending import PendingVerdict
from breakglass.testing import postgres_database, service_url

pytestmark = [pytest.mark.node, pytest.mark.slow]

ROLE = Path(__file__).with_name("simulate_role.py")


BREAKGLASS = str(Path(sys.executable).with_name("breakglass"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(port: int, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Until ``serve``'s ``/readyz`` answers 200 (its simulate worker takes items)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve --role simulate exited with {proc.returncode}"
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if answer.status_code == 200:
                assert "simulate" in answer.json()["checks"]
                return
        time.sleep(0.2)
    raise TimeoutError("serve --role simulate not ready")


@contextlib.contextmanager
def simulate_processes(config: Path, n: int, launcher: str) -> Iterator[list[subprocess.Popen[str]]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ports = [free_port() for _ in range(n)]
    if launcher == "serve":
        commands = [[BREAKGLASS, "serve", str(config), "--role", "simulate", "--port", str(p)] for p in ports]
    else:
        commands = [[sys.executable, str(ROLE), str(config)] for _ in ports]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL if launcher == "serve" else subprocess.PIPE,
                              text=True, env=env) for c in commands]  # fmt: skip
    try:
        for proc, port in zip(procs, ports, strict=True):
            if launcher == "serve":
                ready(port, proc)
                continue
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.poll())
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def close(defense: Defense) -> None:
    """``Defense.close`` for a JetStream bus, whose subscription raises when its connection closes."""
    defense.stop.set()
    # every stage ends on its stop (a cancelled nats-py fetch used to keep the responder's consumer
    # re-subscribing: bus/cancel.py)
    _done, hung = await asyncio.wait(defense.tasks[1:], timeout=30)
    stuck = [task.get_name() for task in hung]
    for task in [defense.tasks[0], *hung]:
        task.cancel()
    # a cancelled JetStream fetch may raise nats-py's own errors rather than CancelledError
    await asyncio.wait(defense.tasks, timeout=10)
    for task in defense.tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: not reported at garbage collection
    _nc, js = defense.app.bus.connection()  # type: ignore[attr-defined]
    prefix = defense.app.config.settings.bus.prefix
    for stream in (prefix, f"{prefix}-work-simulate"):
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
    await defense.app.close()
    assert not stuck, f"stages that did not end within 30 s of their stop: {stuck}"


def with_bus(
    config: Path, bus: dict[str, Any], *, mempool: bool, name: str, store: str | None = None
) -> Path:
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["bus"] = bus
    if store is not None:
        data["store"] = {"url": store}
    data["mempool"]["enabled"] = mempool
    path = config.with_name(name)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def probe(w3: Web3) -> str:
    """A pending transfer from a fresh account: its verdict says a watcher and a worker are up."""
    account = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**18)])  # type: ignore[arg-type]
    tx = {"to": Account.create().address, "value": 1, "gas": 21_000, "nonce": 0, "chainId": w3.eth.chain_id,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2}  # fmt: skip
    signed = account.sign_transaction(tx)
    return w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()


@pytest.mark.parametrize("launcher", ["serve", "script"])
async def test_a_pending_exploit_judged_by_simulate_worker_processes_is_front_run_by_the_pause(
    launcher: str, build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    bus = {"kind": "jetstream", "url": url, "prefix": f"bgtest_{uuid.uuid4().hex[:10]}"}
    scenario = SCENARIOS["forwarder-oracle"]
    with contextlib.ExitStack() as stack:
        store = None
        if launcher == "serve":  # roles in separate processes share a PostgreSQL store
            server = service_url(
                "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
            )
            store = stack.enter_context(postgres_database(server))
        await defend(build, tmp_path, monkeypatch, bus, scenario, launcher, store)


async def defend(
    build: Build,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    bus: dict[str, Any],
    scenario: Any,
    launcher: str,
    store: str | None,
) -> None:
    with Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*scenario.switches))
        base = defended_config(tmp_path, node, deployer)
        # this process: follower, detectors, responder; no mempool of its own, so it judges nothing
        here = with_bus(base, bus, mempool=False, name="detect-respond.yaml")
        simulate = with_bus(base, bus, mempool=True, name="simulate.yaml", store=store)
        defense = await Defense.start(here, venue, monkeypatch)
        assert defense.app.components.mempool is None
        from breakglass.bus.workqueue import JetStreamWorkQueue
        from breakglass.simulate.worker import QUEUE

        queue = await JetStreamWorkQueue(defense.app.bus, QUEUE).open()  # type: ignore[arg-type]
        verdicts: dict[str, PendingVerdict] = {}

        async def listen() -> None:
            async for verdict in queue.verdicts():
                verdicts[verdict.tx_hash] = verdict

        listener = asyncio.create_task(listen())
        try:
            with simulate_processes(simulate, 2, launcher) as procs:
                probed = await asyncio.to_thread(probe, w3)
                async with asyncio.timeout(60):
                    while probed not in verdicts:
                        await asyncio.sleep(0.05)
                run = ScenarioRun(scenario, venue, build)
                result = await asyncio.to_thread(play_strike_in_public_mempool, run, node)
                async with asyncio.timeout(60):  # the last transactions seen are judged too
                    while (waiting := await queue.waiting()) > 0:
                        await asyncio.sleep(0.1)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await close(defense)
        strike = {s.tx_hash: s for s in result.steps if s.phase is Phase.STRIKE and s.tx_hash}
        flagged = [
            f
            for f in defense.serious(FindingStage.PENDING)
            if f.tx_hash in strike and f.severity is Severity.CRITICAL
        ]
        assert flagged, (result.to_json(), [(f.monitor_id, f.stage, f.tx_hash) for f in defense.findings])
        first = min((strike[f.tx_hash] for f in flagged), key=lambda s: s.block or 0)  # type: ignore[index]
        assert first.block is not None and first.tx_hash is not None
        pauses = guardian_txs(w3, venue.key("guardian").address, first.block, first.block)
        receipt = w3.eth.get_transaction_receipt(first.tx_hash)  # type: ignore[arg-type]
        assert pauses and min(i for _b, i, _h in pauses) < receipt["transactionIndex"]  # same block, ahead
        # judged by a worker process, reported on the queue's verdict subject, the finding once
        judged_by = verdicts[first.tx_hash].worker
        assert judged_by.rsplit(":", 1)[1] in {str(p.pid) for p in procs}
        fingerprints = [f.fingerprint for f in defense.findings if f.tx_hash == first.tx_hash]
        assert len(fingerprints) == len(set(fingerprints))
        assert waiting == 0
    assert result.loss <= 0, result.to_json()
