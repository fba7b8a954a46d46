"""``breakglass serve --role`` as four real OS processes (issue 19): detect, respond, incidents and api
on one JetStream stream and one PostgreSQL database (both new, the test's own). An anvil chain runs a
guarded mock venue and a token; a holder's balance crossing a limit breaks the ``breach`` invariant
(the exploit), whose playbook pauses a market. The detect process finds it, the respond process
pauses the market on chain, the incidents process records the alert and the incident, the api process
serves them. Then the incidents process is SIGKILLed, a second breach happens while it is gone, and a
new incidents process records it: its durable JetStream consumer resumes where the dead one stopped.
A role split on the in-process bus is refused before anything starts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from benchmarks.guarded_venue import LIMIT, breach_config, guarded_venue
from sqlalchemy import create_engine, text

from breakglass.devnet.solc import compile_contracts
from breakglass.testing import service_url

pytestmark = [pytest.mark.node, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

BIN = Path(sys.executable).parent / "breakglass"
KEY_ENV = "ROLES_TEST_GUARDIAN_KEY"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(condition: Callable[[], T], what: str, within: float = 120) -> T:
    """Poll ``condition()`` until it is truthy (a condition, never a fixed sleep); its value."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        time.sleep(0.2)


class Roles:
    """The test's ``serve --role`` processes, each with its port and log; all stopped at the end."""

    def __init__(self, config: Path, key: str) -> None:
        self.config = config
        self.env = {**os.environ, KEY_ENV: key, "BREAKGLASS_SESSION_SECRET": "s" * 48}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def start(self, role: str) -> subprocess.Popen[bytes]:
        port = self.ports[role] = _free_port()
        log = (self.config.parent / f"{role}.log").open("ab")
        argv = [str(BIN), "serve", str(self.config), "--role", role, "--port", str(port)]
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.config.parent
        )
        self.procs[role] = proc
        return proc

    def ready(self, role: str) -> dict[str, Any] | None:
        proc = self.procs[role]
        if proc.poll() is not None:
            log = (self.config.parent / f"{role}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"serve --role {role} exited with {proc.returncode}:\n{log}")
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.ports[role]}/readyz", timeout=5)
        except httpx.TransportError:
            return None
        return dict(answer.json()) if answer.status_code == 200 else None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def shared(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database and a new JetStream stream prefix, dropped after the test."""
    import psycopg

    nats = service_url("BREAKGLASS_TEST_NATS_URL", "JetStream", "nats://127.0.0.1:4222")
    database = f"bg_roles_{uuid.uuid4().hex[:10]}"
    plain = postgres_url.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    prefix = f"roles{uuid.uuid4().hex[:8]}"
    try:
        yield (
            plain.rsplit("/", 1)[0] + "/" + database,
            f'bus: {{kind: jetstream, url: "{nats}", prefix: {prefix}}}\n',
        )
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        asyncio.run(_drop_stream(nats, prefix))


async def _drop_stream(url: str, stream: str) -> None:
    import nats as nats_py

    client = await nats_py.connect(url)
    try:
        await client.jetstream().delete_stream(stream)
    except Exception:  # never created: no process got that far
        pass
    finally:
        await client.close()


def test_four_role_processes_detect_contain_record_and_serve_and_a_killed_incidents_process_loses_nothing(
    tmp_path: Path, shared: tuple[str, str]
) -> None:
    store, bus = shared
    build = compile_contracts(["contracts/mocks"])
    with guarded_venue(build, tmp_path, token=("Roles USD", "rUSD")) as world:
        w3, admin, holder, sink = world.w3, world.admin, world.holder, world.sink
        guardian, venue, token = world.guardian, world.venue, world.token
        config = tmp_path / "roles.yaml"
        config.write_text(
            breach_config(protocol="roles", store=store, bus=bus, rpc=world.node.url, holder=holder,
                          env=KEY_ENV),
            encoding="utf-8",
        )  # fmt: skip
        engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
        roles = Roles(config, world.key)
        try:
            # the consumers first: a durable JetStream consumer is created by its first process and from
            # then on keeps its place, so the findings detect publishes wait for it whatever happens
            for role in ("respond", "incidents", "api"):
                roles.start(role)
            respond = _until(lambda: roles.ready("respond"), "respond ready", within=180)
            incidents = _until(lambda: roles.ready("incidents"), "incidents ready", within=180)
            _until(lambda: roles.ready("api"), "api ready", within=180)
            # each process reports its own roles' checks only
            assert "responder" in respond["checks"] and "follower" not in respond["checks"]
            assert "responder" not in incidents["checks"] and "follower" not in incidents["checks"]
            roles.start("detect")
            detect = _until(lambda: roles.ready("detect"), "detect caught up", within=180)
            assert "follower" in detect["checks"] and "responder" not in detect["checks"]

            # the exploit: the holder's balance crosses the limit (the breach invariant breaks)
            mint = token.functions.mint(holder, LIMIT).transact({"from": admin})
            breached = w3.eth.wait_for_transaction_receipt(mint)["blockNumber"]
            _until(lambda: venue.functions.marketPaused(breached).call(), "guardian pause on chain")

            def guardian_txs() -> int:
                blocks = range(breached, w3.eth.block_number + 1)
                txs = [
                    tx for n in blocks for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]
                ]
                return sum(str(tx["from"]).lower() == guardian.address.lower() for tx in txs)  # type: ignore[index]

            assert guardian_txs() == 1  # one pause, sent once

            def recorded(alerts: int) -> bool:
                """``alerts`` breach alerts in the store, and an incident."""
                with engine.connect() as conn:
                    found = conn.execute(
                        text("SELECT COUNT(*) FROM alerts WHERE monitor_id = 'breach'")
                    ).scalar()
                    incident = conn.execute(text("SELECT COUNT(*) FROM incidents")).scalar()
                return found == alerts and bool(incident)

            _until(lambda: recorded(1), "the breach's alert and incident in the store")

            token_cli = subprocess.run(
                [str(BIN), "tokens", "create", "--role", "viewer", "--name", "ops", "-c", str(config)],
                capture_output=True, text=True, env=roles.env, cwd=tmp_path, timeout=120, check=True,
            )  # fmt: skip
            headers = {"Authorization": f"Bearer {token_cli.stdout.strip()}"}
            api = f"http://127.0.0.1:{roles.ports['api']}"
            served = httpx.get(f"{api}/api/v1/incidents", headers=headers, timeout=10)
            assert served.status_code == 200 and len(served.json()) >= 1, served.text
            # a role process without the api: its own metrics, with the same token; no API
            detect_url = f"http://127.0.0.1:{roles.ports['detect']}"
            scraped = httpx.get(f"{detect_url}/metrics", headers=headers, timeout=10)
            assert scraped.status_code == 200 and "breakglass_follower" in scraped.text
            assert httpx.get(f"{detect_url}/api/v1/incidents", headers=headers, timeout=10).status_code == 404

            # the incidents process dies; a second breach happens meanwhile; a new one records it
            roles.procs["incidents"].send_signal(signal.SIGKILL)
            roles.procs["incidents"].wait(10)
            back = token.functions.transfer(sink, LIMIT).transact({"from": holder})
            w3.eth.wait_for_transaction_receipt(back)
            again = token.functions.mint(holder, LIMIT).transact({"from": admin})
            second = w3.eth.wait_for_transaction_receipt(again)["blockNumber"]
            _until(lambda: venue.functions.marketPaused(second).call(), "second pause on chain")
            assert recorded(1)  # nothing records the second breach while the incidents role is down
            roles.start("incidents")
            _until(lambda: recorded(2), "the second breach's alert, after the restart", within=180)
            assert guardian_txs() == 2  # one pause per breach, none repeated
        finally:
            roles.stop()
            engine.dispose()


def test_a_role_split_on_the_in_process_bus_exits_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "bg.yaml"
    config.write_text(f"protocol: split\nstore:\n  url: sqlite:///{tmp_path / 'bg.db'}\n", encoding="utf-8")
    done = subprocess.run(
        [str(BIN), "serve", str(config), "--role", "incidents", "--port", str(_free_port())],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "bus.kind" in done.stderr and "jetstream" in done.stderr and "store.url" in done.stderr
    assert not (tmp_path / "bg.db").exists()  # refused before the store was touched
