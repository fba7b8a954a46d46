"""``breakglass serve``'s exit codes as a supervisor sees them (docs/going-live.md, "Exit codes"): a
detect replica that loses its lease stops with code 5 (a stage failed: restart me), a SIGTERM stops a
replica cleanly with 0. Real processes: PostgreSQL, JetStream, NATS KV leases and an anvil node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the checkout: benchmarks/ is not installed
from benchmarks.faults import BREAKGLASS, free_port
from benchmarks.ha_detect import ACTIVE, STANDBY, Replica, services, wait

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(600)]

CONFIG = """\
protocol: exitcodes
store: {{ url: "{store}" }}
chain: {{ chain_id: 31337, rpc: ["{rpc}"], confirmations: 0, poll_interval: 0.1 }}
bus: {{ kind: jetstream, url: "{nats}", prefix: {prefix} }}
ha: {{ lease: nats, ttl_seconds: 2 }}
monitors:
  - {{ id: keeper-gas, kind: balance, address: "0x976EA74026E726554dB657fA54763abd0C3a0aa9", min_eth: 1 }}
"""


def test_a_replica_that_lost_its_lease_exits_5_and_a_sigterm_exits_0(tmp_path: Path) -> None:
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    replicas: list[Replica] = []
    with (
        services(postgres, nats) as (store, prefix),
        Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=0.5)) as node,
    ):
        config = tmp_path / "exitcodes.yaml"
        config.write_text(
            CONFIG.format(store=store, rpc=node.url, nats=nats, prefix=prefix), encoding="utf-8"
        )
        replicas = [Replica(name, config, {}, tmp_path) for name in ("a", "b")]
        first, second = replicas
        try:
            first.start()
            wait("the first replica active", lambda: bool(first.events(ACTIVE)), replicas)
            second.start()
            wait("the second standing by", lambda: bool(second.events(STANDBY)), replicas)
            assert first.proc is not None
            os.kill(first.proc.pid, signal.SIGSTOP)  # a paused VM: its lease runs out, the standby takes it
            try:
                wait("the second active", lambda: bool(second.events(ACTIVE)), [second])
            finally:
                os.kill(first.proc.pid, signal.SIGCONT)
            assert first.proc.wait(120) == 5, first.log_path.read_text(encoding="utf-8")[-4000:]
            [failed] = first.events("component failed; stopping")
            # LeaseLost, or the fenced checkpoint write that finds out first (the paused step resumed)
            assert failed["component"] == "watcher", failed
            assert "lease lost" in failed["error"] or "fencing token" in failed["error"], failed
            assert "error: stage watcher failed:" in first.log_path.read_text(
                encoding="utf-8"
            )  # why, on stderr

            assert second.proc is not None
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(60) == 0, second.log_path.read_text(encoding="utf-8")[-4000:]
            assert not second.events("component failed; stopping")
        finally:
            for replica in replicas:
                replica.stop()


def test_a_process_of_some_roles_stops_on_sigterm_with_0(tmp_path: Path) -> None:
    # Without api among its roles, uvicorn serves the probes in this process; its own signal handling
    # raised the SIGTERM again once it stopped, which killed the process (-15) before the stages closed.
    postgres = service_url(
        "BREAKGLASS_TEST_POSTGRES_URL", "PostgreSQL", "postgresql://postgres@127.0.0.1/test"
    )
    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    with services(postgres, nats) as (store, prefix):
        config = tmp_path / "roles.yaml"
        config.write_text(
            f'protocol: exitcodes\nstore: {{ url: "{store}" }}\n'
            f'bus: {{ kind: jetstream, url: "{nats}", prefix: {prefix} }}\n',
            encoding="utf-8",
        )
        port = free_port()
        argv = [BREAKGLASS, "serve", str(config), "--role", "incidents", "--port", str(port)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while True:  # polling a condition (the probe answering), not waiting for a time
                try:
                    assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                    time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
