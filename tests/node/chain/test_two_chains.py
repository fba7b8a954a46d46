"""Several chains in one deployment, on two real anvil nodes at once (chain ids 31337 and 31338).

One ``breakglass serve`` process, one configuration (``examples/two-chains.yaml``'s shape): each chain
with its follower, responder and guardian nonce; the same guardian key and the same contract address
on both (one deployer, same nonce), which is what makes mixing them up possible. An exploit on one
chain while the other carries honest traffic: that chain's guardian pauses it, the other is untouched,
and the alert and the ledger say which chain. Then an exploit on the other chain: it is paused with its
own nonce 0 (a nonce taken from the first chain's ledger rows would leave a gap and never be mined).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from eth_account import Account
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build, compile_contracts

BREAKGLASS = str(Path(sys.executable).parent / "breakglass")
EXAMPLE = Path(__file__).parents[3] / "examples" / "two-chains.yaml"


@pytest.fixture(scope="module")
def mocks() -> Build:
    return compile_contracts(["contracts/mocks"])


@pytest.fixture
def nodes() -> Iterator[tuple[Anvil, Anvil]]:
    alpha = Anvil(AnvilOptions(mode=BlockMode.AUTO, chain_id=31337)).start()
    try:
        beta = Anvil(AnvilOptions(mode=BlockMode.AUTO, chain_id=31338)).start()
    except BaseException:
        alpha.stop()
        raise
    yield alpha, beta
    beta.stop()
    alpha.stop()


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


class Chain:
    def __init__(self, node: Anvil, build: Build, guardian: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(node.url))
        self.url = node.url
        self.admin = self.w3.eth.accounts[0]
        node.rpc("anvil_setBalance", guardian, hex(10**20))
        self.venue = Deployer(self.w3, build).deploy("venue", "MockGuardedVenue", self.admin, guardian, 3600)
        self.guardian = guardian

    def trade(self) -> None:
        """Honest traffic: a trader trades on market 1."""
        self.venue.functions.trade(1).transact({"from": self.w3.eth.accounts[2]})

    def exploit(self) -> None:
        """A stolen admin key raises the leverage far beyond the cap: the monitor's critical finding."""
        self.venue.functions.setMaxLeverage(900).transact({"from": self.admin})

    def paused(self) -> bool:
        return bool(self.venue.functions.paused().call())

    def guardian_nonce(self) -> int:
        return int(self.w3.eth.get_transaction_count(self.guardian, "latest"))


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store URL, ha.lease): SQLite with one process's leases, or a fresh PostgreSQL database with
    leases in it (each chain's follower and responder then holds its own lease and fencing tokens)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bg.db'}", "none"
        return
    base = make_url(request.getfixturevalue("postgres_url")).set(drivername="postgresql")
    admin = base.render_as_string(hide_password=False)
    name = f"bg_chains_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = base.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        yield url, "postgres"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_exploit_on_one_chain_pauses_that_chain_only(
    nodes: tuple[Anvil, Anvil], mocks: Build, tmp_path: Path, store: tuple[str, str]
) -> None:
    account = Account.create()
    guardian_key = "0x" + bytes(account.key).hex()
    alpha, beta = (Chain(node, mocks, account.address) for node in nodes)
    assert alpha.venue.address == beta.venue.address  # one address on both chains
    abi = tmp_path / "abi" / "MockGuardedVenue.json"
    abi.parent.mkdir()
    abi.write_text(json.dumps(mocks["MockGuardedVenue"].abi))
    config = tmp_path / "two-chains.yaml"
    shutil.copy(EXAMPLE, config)
    store_url, lease = store
    # check (offline) and test-monitor (publishes nothing) open no store: the same on either backend, so
    # the SQLite run, the example as shipped, runs them (each a Python process start, seconds under load)
    offline_commands = lease == "none"
    if lease != "none":  # each chain's follower and responder then lead under their own lease
        with config.open("a", encoding="utf-8") as out:
            out.write(f"\nha: {{lease: {lease}}}\n")
    env = {
        **os.environ,
        "ALPHA_RPC": alpha.url,
        "BETA_RPC": beta.url,
        "VENUE": alpha.venue.address,
        "VENUE_ABI": str(abi),
        "GUARDIAN_KEY": guardian_key,
        "STORE_URL": store_url,
    }
    if offline_commands:
        check = subprocess.run([BREAKGLASS, "check", str(config)], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    made = subprocess.run(
        [BREAKGLASS, "tokens", "create", "--role", "viewer", "--name", "test", "-c", str(config)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    viewer = {"Authorization": f"Bearer {made.stdout.strip()}"}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [BREAKGLASS, "--log-json", "serve", str(config), "--port", str(port)],
            env=env, stdout=out, stderr=out, cwd=tmp_path,
        )  # fmt: skip
    try:
        ready = f"http://127.0.0.1:{port}/readyz"
        wait_for(lambda: _ok(ready), "both chains followed and both responders ready", proc, log)
        doctor = subprocess.run([BREAKGLASS, "doctor", str(config)], env=env, capture_output=True, text=True)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # each chain's node, contract, guardian
        assert "alpha: " in doctor.stdout and "beta: " in doctor.stdout
        for _ in range(3):
            alpha.trade()
            beta.trade()
        beta.exploit()
        for _ in range(3):  # honest traffic goes on on alpha while beta is attacked
            alpha.trade()
        wait_for(beta.paused, "the beta guardian's pause", proc, log)
        alpha.trade()  # alpha was never touched: it still trades
        assert not alpha.paused() and alpha.guardian_nonce() == 0 and beta.guardian_nonce() == 1
        db = store_url
        wait_for(lambda: bool(query(db, "SELECT 1 FROM alerts")), "the alert", proc, log)
        assert query(db, "SELECT monitor_id, chain_id FROM alerts") == [("leverage-beta", 31338)]
        if offline_commands:  # one chain of the file, tried on one block: the beta exploit's block
            block = str(beta.w3.eth.block_number)
            tried = subprocess.run(
                [BREAKGLASS, "test-monitor", str(config), "--chain", "beta", "--block", block, "--json"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert [(f["monitor"], f["chain"]) for f in map(json.loads, tried.stdout.splitlines())] == [
                ("leverage-beta", 31338)]  # fmt: skip
        ledger = query(db, "SELECT DISTINCT playbook, chain_id FROM respond_ledger")
        assert ledger == [("pause-beta", 31338)]

        alpha.exploit()  # now alpha: its own guardian nonce 0, though the key signed nonce 0 on beta
        wait_for(alpha.paused, "the alpha guardian's pause", proc, log)
        assert (alpha.guardian_nonce(), beta.guardian_nonce()) == (1, 1)  # one transaction each
        chains = dict(query(db, "SELECT monitor_id, chain_id FROM alerts"))
        assert chains == {"leverage-beta": 31338, "leverage-alpha": 31337}
        wait_for(lambda: len(query(db, "SELECT 1 FROM respond_ledger WHERE step = 'confirmed'")) == 2,
                 "both confirmations", proc, log)  # fmt: skip
        ledger = query(db, "SELECT playbook, chain_id FROM respond_ledger WHERE step = 'confirmed'")
        assert sorted(ledger) == [("pause-alpha", 31337), ("pause-beta", 31338)]

        # the API says which chain each alert, action and timeline entry is on
        api = f"http://127.0.0.1:{port}/api/v1"
        alerts = httpx.get(f"{api}/alerts", headers=viewer, timeout=10).json()
        assert sorted((a["monitor_id"], a["chain_id"]) for a in alerts) == [
            ("leverage-alpha", 31337), ("leverage-beta", 31338)]  # fmt: skip
        actions = httpx.get(f"{api}/actions", headers=viewer, timeout=10).json()
        assert sorted((a["playbook"], a["chain_id"]) for a in actions) == [
            ("pause-alpha", 31337), ("pause-beta", 31338)]  # fmt: skip
        incidents = httpx.get(f"{api}/incidents", headers=viewer, timeout=10).json()
        # grouped by protocol (alerting.group_by): one incident, whose timeline says each step's chain
        assert incidents
        said: set[tuple[str, int]] = set()
        for incident in incidents:
            timeline = httpx.get(f"{api}/incidents/{incident['id']}/timeline", headers=viewer, timeout=10)
            for entry in timeline.json():
                if entry["kind"] in ("finding", "transaction") and "chain_id" in entry["data"]:
                    said.add((entry["kind"], entry["data"]["chain_id"]))
            chains = {c for _kind, c in said}
        assert said >= {
            ("finding", 31337),
            ("finding", 31338),
            ("transaction", 31337),
            ("transaction", 31338),
        }
        assert chains == {31337, 31338}
        if lease != "none":  # each chain's responder claimed with its own lease's fencing tokens
            fences = query(db, "SELECT key FROM respond_claims WHERE executor = 'fence' ORDER BY key")
            assert fences == [(":fence:31337",), (":fence:31338",)]
        health = httpx.get(f"{api}/invariants", headers=viewer, timeout=10).json()
        assert [(c["name"], c["chain_id"]) for c in health["chains"]] == [("alpha", 31337), ("beta", 31338)]
        assert all(c["last_block"] is not None for c in health["chains"])
        assert {(i["monitor_id"], i["chain_id"]) for i in health["invariants"]} == {
            ("leverage-alpha", 31337), ("leverage-beta", 31338)}  # fmt: skip
        # and the dashboard names the chain of each alert, finding and action
        site = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{site}/incidents/{incidents[0]['id']}", headers=viewer, timeout=10).text
        actions_page = httpx.get(f"{site}/actions", headers=viewer, timeout=10).text
        for html in (page, actions_page):
            assert '<span class="chain">alpha</span>' in html and '<span class="chain">beta</span>' in html
        assert "alpha (31337)" in httpx.get(f"{site}/ui/invariants", headers=viewer, timeout=10).text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
