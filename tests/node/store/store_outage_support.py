"""Helpers of the store-outage tests: a guarded mock venue on an interval-mining anvil, a per-block probe
plugin, ``breakglass serve`` as a real process, and what the store holds afterwards.

A uniquely named module (not ``conftest``) so that the tests import it without clashing with others.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from web3 import Web3

from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build

BREAKGLASS = str(Path(sys.executable).parent / "breakglass")
GUARDIAN_ENV = "BG_OUTAGE_GUARDIAN_KEY"

PLUGIN = '''
class EveryBlock:
    """One info finding per block: what lets the test check that no block's finding was lost."""

    def __init__(self, options):
        pass

    def on_block(self, ctx, block):
        return [ctx.finding(f"block {block.number}", evidence={"number": block.number})]
'''

CONFIG = """
protocol: outage
deployment: manifest.json
store: {{url: "{url}"}}
chain: {{poll_interval: 0.1}}
monitors:
  - {{id: every-block, kind: plugin, plugin: "outage_probe:EveryBlock", severity: info}}
  - {{id: leverage-set, kind: event, contract: venue, event: MaxLeverageSet, severity: critical}}
responder:
  guardian: {{env: {env}}}
  fees: {{priority_fee_gwei: 1}}
policy:
  allow:
    - {{contract: venue, function: pauseMarket, args: {{marketId: any}}}}
  max_fee_gwei: 500
playbooks:
  - id: contain
    match: {{monitors: [leverage-set]}}
    actions:
      - {{kind: call, id: pause-market, contract: venue, function: pauseMarket,
          args: ["{{evidence.args.value}}"], once_per: target}}
"""


def wait_for(condition: Callable[[], bool], what: str, within: float = 90.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Served:
    """The venue, the configuration and the ``serve`` processes started on them."""

    node: Anvil
    w3: Web3
    venue: Any
    admin: str
    guardian: str
    guardian_key: str
    folder: Path
    config: Path
    url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.folder / "serve.log"

    def start(self) -> subprocess.Popen[bytes]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, GUARDIAN_ENV: self.guardian_key, "PYTHONPATH": str(self.folder)}
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [BREAKGLASS, "--log-level", "info", "--log-json", "serve", str(self.config),
                 "--port", str(port)],
                env=env, stdout=log, stderr=log, cwd=self.folder,
            )  # fmt: skip
        self.processes.append(proc)
        return proc

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def logged(self, event: str) -> bool:
        return any(str(e.get("event", "")).startswith(event) for e in self.events())

    def stop_all(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)

    def set_leverage(self, value: int) -> None:
        """The admin emits MaxLeverageSet(value): a critical finding; its playbook pauses market ``value``."""
        self.venue.functions.setMaxLeverage(value).transact({"from": self.admin})

    def paused(self, market: int) -> bool:
        return bool(self.venue.functions.marketPaused(market).call())

    def guardian_nonce(self) -> int:
        return int(self.w3.eth.get_transaction_count(self.guardian, "latest"))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        url = make_url(self.url)
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql))]
        finally:
            engine.dispose()


def serve_venue(node: Anvil, build: Build, folder: Path, url: str) -> Served:
    w3 = Web3(Web3.HTTPProvider(node.url))
    account = Account.create()
    node.rpc("anvil_setBalance", account.address, hex(10**20))
    admin = w3.eth.accounts[0]
    deployer = Deployer(w3, build)
    venue = deployer.deploy("venue", "MockGuardedVenue", admin, account.address, 3600)
    deployer.manifest(node.url).write(folder / "manifest.json")
    (folder / "outage_probe.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    config = folder / "breakglass.yaml"
    config.write_text(CONFIG.format(url=url, env=GUARDIAN_ENV), encoding="utf-8")
    key = "0x" + bytes(account.key).hex()
    return Served(node, w3, venue, admin, account.address, key, folder, config, url)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=60)


def assert_everything_written_once(served: Served, first: int, last: int, markets: list[int]) -> None:
    """Every block from ``first`` to ``last`` checkpointed once with its probe finding's alert, and
    every market's pause claimed, sent, confirmed and recorded exactly once."""
    canonical = [n for (n,) in served.query(
        f"SELECT number FROM chain_blocks WHERE orphaned = {'false' if 'postgres' in served.url else '0'} "
        f"AND number BETWEEN {first} AND {last} ORDER BY number")]  # fmt: skip
    assert canonical == list(range(first, last + 1)), "a block's checkpoint is missing or doubled"
    alerted = [n for (n,) in served.query(
        "SELECT block_number FROM alerts WHERE monitor_id = 'every-block' "
        f"AND block_number BETWEEN {first} AND {last} ORDER BY block_number")]  # fmt: skip
    assert alerted == list(range(first, last + 1)), "a block's finding never became an alert, or twice"
    claims = served.query("SELECT key FROM respond_claims ORDER BY key")
    assert len(claims) == len(markets), claims
    for (key,) in claims:
        steps = [
            s for (s,) in served.query(f"SELECT step FROM respond_ledger WHERE key = '{key}' ORDER BY id")
        ]
        for step in ("intent", "signed", "submitted", "confirmed"):
            assert steps.count(step) == 1, (key, steps)  # recorded, and once
    assert all(served.paused(m) for m in markets)
    assert served.guardian_nonce() == len(markets)  # one transaction per action: none sent twice
