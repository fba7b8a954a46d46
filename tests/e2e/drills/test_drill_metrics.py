"""Every stage's metrics, read from the process's Prometheus registry after one defended drill.

The drill: forwarder-oracle in public mode (the mempool stage judges the price push while pending),
behind the drill's ``rpc-errors`` proxy (a fifth of the node's requests fail) and with a 2-block reorg
after the first strike step, and two notification
channels added to the drill's configuration: a real local webhook and one whose port is closed.
Failovers between endpoints need two endpoints: ``tests/unit/metrics`` and the responder's failover
tests cover them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import Venue
from breakglass.drills import defense, faults, runner
from breakglass.drills.runner import DrillOptions, Mode, run_drill
from breakglass.drills.scenarios import SCENARIOS

pytestmark = [pytest.mark.node, pytest.mark.slow]


_DEFENSES: list[defense.Defense] = []
"""The drill's running defense (``Defense.start`` wrapped by the test), for the fault to wait on."""


class _RpcErrorsAndReorg(faults.RpcErrors):
    """The ``rpc-errors`` proxy, and a 2-block reorg after the first strike step whose new branch
    carries a transfer the old one did not (re-mining blocks with the same content, as the ``reorg``
    fault does, can give them the same hashes: no reorg for anyone to see)."""

    name = "rpc-errors+reorg"

    reorged = False

    def after_strike_step(self, node: Anvil, venue: Venue, index: int) -> None:
        if index >= 1 and not self.reorged:  # after the first exploit transaction
            self.reorged = True
            head = int(node.rpc("eth_blockNumber"), 16)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the follower has the blocks about to be orphaned
                follower = _DEFENSES[-1].app.components.watcher.follower
                if follower.last is not None and follower.last.number >= head:
                    break
                time.sleep(0.05)
            sender = node.rpc("eth_accounts")[9]
            seen = _sum(_samples(), "breakglass_follower_reorgs_total")
            node.rpc("anvil_reorg", faults.REORG_DEPTH, [[{"from": sender, "to": sender, "value": "0x1"}, 0]])
            # anvil pushes no head for the new branch: the follower meets it at the next block. If the
            # venue is contained by then, the drill is back on automine and may mine none for a while.
            deadline = time.monotonic() + 20
            reorgs = "breakglass_follower_reorgs_total"
            while _sum(_samples(), reorgs) <= seen and time.monotonic() < deadline:
                node.rpc("evm_mine")
                time.sleep(0.5)


class _Hook(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in REGISTRY.collect():
        if family.name.startswith("breakglass_"):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


async def test_after_a_drill_every_stage_has_moved_its_metrics(
    build: Build, tmp_path: Path, webhook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = defense.defended_config

    def with_channels(folder: Path, *args: Any, **kwargs: Any) -> Path:
        path = original(folder, *args, **kwargs)
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config["notifications"] = {
            "attempts": 1,
            "channels": [
                {"name": "hook", "kind": "webhook", "url": webhook},
                {"name": "dead", "kind": "webhook", "url": "http://127.0.0.1:9/closed"},
            ],
        }
        config.setdefault("alerting", {})["default_receivers"] = ["hook", "dead"]
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    monkeypatch.setattr(runner, "defended_config", with_channels)
    start = defense.Defense.start

    async def remembered(*args: Any, **kwargs: Any) -> defense.Defense:
        started = await start(*args, **kwargs)
        _DEFENSES.append(started)
        return started

    monkeypatch.setattr(defense.Defense, "start", remembered)
    monkeypatch.setitem(faults.FAULTS, _RpcErrorsAndReorg.name, _RpcErrorsAndReorg)
    before = _samples()
    started = time.time()
    # no honest blocks: the metrics of the attack's path are what is read, and they would only lengthen it
    opts = DrillOptions(mode=Mode.PUBLIC, fault=_RpcErrorsAndReorg.name, workdir=tmp_path, benign_blocks=0)
    result = await run_drill(SCENARIOS["forwarder-oracle"], build, opts)
    assert result.ttc_ms is not None, result.to_json()
    after = _samples()

    def moved(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    def now(name: str, **labels: str) -> float:
        return _sum(after, name, **labels)

    # follower
    assert moved("breakglass_follower_blocks_processed_total") > 10
    assert moved("breakglass_follower_reorgs_total") >= 1
    assert now("breakglass_follower_head_block") > 0 and now("breakglass_follower_processed_block") > 0
    assert "breakglass_follower_head_lag_blocks" in {n for n, _ in after}
    assert "breakglass_follower_head_lag_seconds" in {n for n, _ in after}
    assert now("breakglass_follower_last_step_timestamp_seconds") >= started
    # RPC, per endpoint: the proxy's 503s are transport errors
    assert moved("breakglass_rpc_requests_total") > 50
    assert moved("breakglass_rpc_request_duration_seconds_count") > 50
    assert moved("breakglass_rpc_errors_total", reason="transport") > 0
    assert all("@" not in dict(ls).get("endpoint", "") for _n, ls in after)
    # detection: per-monitor time and findings by severity, both paths
    assert moved("breakglass_monitor_evaluation_seconds_count", monitor="oracle-deviation-eth") > 0
    assert moved("breakglass_monitor_evaluation_seconds_sum") > 0
    assert moved("breakglass_findings_total", stage="pending", severity="critical") > 0
    assert moved("breakglass_findings_total", stage="block") > 0
    # mempool
    assert moved("breakglass_mempool_transactions_seen_total") > 0
    assert moved("breakglass_mempool_transactions_simulated_total") > 0
    assert moved("breakglass_mempool_transactions_skipped_total") > 0
    assert moved("breakglass_mempool_verdict_latency_seconds_count") > 0
    assert now("breakglass_mempool_last_seen_timestamp_seconds") >= started
    # responder
    assert moved("breakglass_responder_actions_total", step="submitted") > 0
    assert moved("breakglass_responder_actions_total", step="confirmed") > 0
    assert moved("breakglass_responder_fees_paid_wei_total") > 0
    assert now("breakglass_responder_guardian_balance_wei") > 0
    assert now("breakglass_responder_containment_tx_cost_wei") > 0
    assert "breakglass_responder_ledger_backlog" in {n for n, _ in after}
    # alerts, incidents, notifications, bus, readiness (the refresher's last round at close)
    assert now("breakglass_alerts", status="active") > 0
    assert now("breakglass_incidents") >= 1
    assert moved("breakglass_notifications_total", channel="hook", outcome="delivered") > 0
    assert moved("breakglass_notifications_total", channel="dead", outcome="failed") > 0
    assert _Hook.received > 0
    assert ("breakglass_bus_consumer_lag_messages", (("consumer", "respond"), ("topic", "findings"))) in after
    assert now("breakglass_ready", check="store") == 1
