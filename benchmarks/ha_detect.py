"""Detector failover: two ``breakglass serve`` replicas follow one chain, the active one is SIGKILLed N
times while the chain makes blocks with a breach in them; the standby takes the ``detect:<chain>``
lease and resumes from the shared checkpoint (``python -m benchmarks.ha``, part ``detect``).

The chain world is the fault soak's (``benchmarks/guarded_venue.py``; the traffic, ``benchmarks/faults.py``):
an interval-mining anvil (0.5 s blocks), a guarded mock venue and a token; a traffic thread mints every
block (the ``traffic`` monitor raises a finding for each mint: a block handled twice shows as an alert
counted twice) and every few blocks moves a balance across a limit and back (the ``breach`` invariant
breaks: the exploit; the playbook pauses the market numbered after the block the breach began in, once).
Store PostgreSQL (a new database), bus and leases on NATS JetStream (a new stream prefix),
``ha.ttl_seconds`` as given.

Each round: both replicas run (the killed one of the last round restarted, standing by); after a random
0.5-3 s the active one (its ``detect active`` log line) is SIGKILLed. The one killed last is not restarted:
no round is left for it to take over in (a restart and its wait cost ~10 s of a loaded test run). Measured
per kill:
- takeover: SIGKILL to the standby's ``detect active`` line (lease expiry on the server, the standby's
  next acquire attempt, the fence claim: about ``ttl`` plus a fifth of it);
- resumed: SIGKILL to the first block checkpointed past the killed replica's last checkpoint;
- caught up: SIGKILL to the checkpoint reaching the head the chain had at the kill.
The baseline, measured in the same run: the standby stopped, the one replica left is SIGKILLed and
started again at once (a supervisor's restart with no standby), resumed and caught up as above (the
process's start-up and the old holding's expiry overlap).
Over the run (goal 0, 0, 0): blocks missed (no canonical checkpoint row between the first and the last
block), findings lost (a mint without its alert), duplicate actions (a guardian call sent twice); and,
for information, blocks handled twice (handled by the killed replica after its last checkpoint write and
again by its successor: their findings are re-published with the same fingerprints and counted on the
one alert, ``alerts.count`` > 1), breaches begun and acted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from web3 import Web3

from benchmarks.faults import (
    BLOCK_TIME,
    BREAKGLASS,
    KEY_ENV,
    Traffic,
    checkpoint,
    drop_stream,
    free_port,
    measure,
    spread,
)
from benchmarks.guarded_venue import breach_config, guarded_venue
from breakglass.devnet.solc import compile_contracts

CHAIN_ID = 31337
ACTIVE = "detect active"
"""The log event of a replica taking the chain's lease (``detect.service``)."""
STANDBY = "detect standing by"


@dataclass
class Replica:
    """One ``serve`` process and its JSON log."""

    name: str
    config: Path
    env: dict[str, str]
    """set for the process beside this one's environment (the guardian key's variable)"""
    folder: Path
    role: str | None = None
    """``serve --role`` (None: every role in one process)"""
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    offset: int = 0
    port: int = 0
    """its HTTP port (``/readyz``, ``/metrics``) since ``start``"""

    def __post_init__(self) -> None:
        self.log_path = self.folder / f"{self.name}.log"
        self.log_path.touch()

    def start(self) -> None:
        self.offset = self.log_path.stat().st_size
        env = {**os.environ, **self.env}
        self.port = free_port()
        argv = [BREAKGLASS, "--log-json", "--log-level", "info", "serve", str(self.config),
                "--port", str(self.port)]  # fmt: skip
        if self.role is not None:
            argv += ["--role", self.role]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder)

    def events(self, name: str) -> list[dict[str, Any]]:
        """This run's (since ``start``) log lines whose event is ``name``."""
        out: list[dict[str, Any]] = []
        with self.log_path.open("rb") as lines:
            lines.seek(self.offset)
            for line in lines:
                if name.encode() not in line:
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and entry.get("event") == name:
                        out.append(entry)
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def _stamp(entry: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()


def wait(what: str, condition: Any, replicas: list[Replica], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for replica in replicas:
            if (
                replica.proc is not None
                and replica.proc.poll() is not None
                and replica.proc.returncode
                not in (
                    0,
                    -signal.SIGKILL,
                )
            ):
                raise RuntimeError(
                    f"{replica.name} exited with {replica.proc.returncode}: {replica.log_path}"
                )
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {timeout:.0f} s (logs in {replicas[0].folder})")
        time.sleep(0.02)


def _until_checkpoint(engine: Any, number: int, replicas: list[Replica]) -> None:
    wait(f"the checkpoint at block {number}", lambda: checkpoint(engine, CHAIN_ID) >= number, replicas)


def active(replicas: list[Replica]) -> Replica | None:
    live = [r for r in replicas if r.alive() and r.events(ACTIVE)]
    return live[0] if len(live) == 1 else None


def detector_failover(
    kills: int,
    folder: Path,
    *,
    postgres: str,
    nats: str,
    ttl: float = 3.0,
    seed: int = 19,
    baseline: int = 0,
) -> dict[str, Any]:
    """Run ``kills`` rounds (see the module docstring), then ``baseline`` rounds of one replica killed
    and restarted at once (no standby: what a supervisor's restart gives); returns the figures."""
    rng = random.Random(seed)
    build = compile_contracts(["contracts/mocks"])
    with services(postgres, nats) as (store, prefix):
        return _rounds(kills, baseline, folder, rng, build, store, nats, prefix, ttl)


@contextlib.contextmanager
def services(postgres: str, nats: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database (its URL) and a JetStream prefix for one run; both dropped after it
    (the stream, and the lease buckets named after the prefix)."""
    import psycopg

    database = f"bg_ha_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    prefix = f"ha{uuid.uuid4().hex[:8]}"
    try:
        yield postgres.rsplit("/", 1)[0] + "/" + database, prefix
    finally:
        with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        asyncio.run(_drop(nats, prefix))


def _rounds(
    kills: int,
    baseline: int,
    folder: Path,
    rng: random.Random,
    build: Any,
    store: str,
    nats: str,
    prefix: str,
    ttl: float,
) -> dict[str, Any]:
    bus = (
        f'bus: {{kind: jetstream, url: "{nats}", prefix: {prefix}}}\n'
        f"ha: {{lease: nats, ttl_seconds: {ttl}}}\n"
    )
    takeover: list[float] = []
    resumed: list[float] = []
    caught_up: list[float] = []
    cold_resumed: list[float] = []
    cold_caught_up: list[float] = []
    replicas: list[Replica] = []
    try:
        with guarded_venue(build, folder, token=("HA USD", "hUSD")) as world:
            w3, guardian, key = world.w3, world.guardian, world.key
            config = folder / "ha.yaml"
            config.write_text(
                breach_config(protocol="soak", store=store, bus=bus, rpc=world.node.url, holder=world.holder,
                              env=KEY_ENV, traffic=True, rate_limit=100_000),
                encoding="utf-8",
            )  # fmt: skip
            engine = create_engine(store.replace("postgresql://", "postgresql+psycopg://", 1))
            traffic = Traffic(w3, world.token, world.admin, world.holder, world.sink)
            mover = threading.Thread(target=traffic.run, daemon=True)
            replicas = [Replica(name, config, {KEY_ENV: key}, folder) for name in ("a", "b")]
            replicas[0].start()
            # the first replica creates the schema and takes the lease; the second stands by
            wait("the first replica active", lambda: bool(replicas[0].events(ACTIVE)), replicas)
            replicas[1].start()
            wait("the second replica standing by", lambda: bool(replicas[1].events(STANDBY)), replicas)
            mover.start()
            try:
                for round_ in range(kills):
                    time.sleep(rng.uniform(0.5, 3.0))
                    victim = active(replicas)
                    assert victim is not None, "no single active replica"
                    successor = next(r for r in replicas if r is not victim)
                    before = checkpoint(engine, CHAIN_ID)
                    head = w3.eth.block_number
                    killed_at = time.time()
                    victim.kill()
                    killed_mono = time.monotonic()
                    at_kill = checkpoint(engine, CHAIN_ID)  # a write in flight may have landed
                    last = max(before, at_kill)
                    _until_checkpoint(engine, last + 1, replicas)
                    resumed.append(time.monotonic() - killed_mono)
                    _until_checkpoint(engine, head, replicas)
                    caught_up.append(time.monotonic() - killed_mono)
                    [took] = successor.events(ACTIVE)
                    takeover.append(_stamp(took) - killed_at)
                    if round_ == kills - 1:
                        break  # no round left to take over in (and the baseline stops the standby)
                    victim.start()  # back as the standby
                    wait("the restarted replica standing by", lambda v=victim: bool(v.events(STANDBY)),
                          replicas)  # fmt: skip
                # the baseline: one replica, restarted by its supervisor (here at once) after each kill
                if baseline:
                    only = active(replicas)
                    assert only is not None
                    for standby in replicas:
                        if standby is not only:
                            standby.stop()
                for _ in range(baseline):
                    time.sleep(rng.uniform(0.5, 3.0))
                    last, head = checkpoint(engine, CHAIN_ID), w3.eth.block_number
                    only.kill()
                    killed_mono = time.monotonic()
                    last = max(last, checkpoint(engine, CHAIN_ID))
                    only.start()
                    _until_checkpoint(engine, last + 1, replicas)
                    cold_resumed.append(time.monotonic() - killed_mono)
                    _until_checkpoint(engine, head, replicas)
                    cold_caught_up.append(time.monotonic() - killed_mono)
            finally:
                traffic.stop.set()
                mover.join(10)
            time.sleep(3 * BLOCK_TIME)
            end = w3.eth.block_number
            _until_checkpoint(engine, end, replicas)
            deadline = time.monotonic() + 60  # the alert stage catches up (ack_wait for killed holders)
            while time.monotonic() < deadline and _unalerted(engine, w3, traffic, end):
                time.sleep(0.5)
            for replica in replicas:
                replica.stop()
            figures = measure(w3, engine, end, traffic, guardian.address)
            with engine.connect() as conn:
                twice = conn.execute(
                    text("SELECT COUNT(*) FROM alerts WHERE monitor_id = 'traffic' AND count > 1")
                ).scalar()
            engine.dispose()
    finally:
        for replica in replicas:
            replica.kill()
    return {
        "kills": kills,
        "lease_ttl_s": ttl,
        "store": "postgresql",
        "bus": "jetstream",
        "lease": "nats",
        "takeover_s": spread(takeover),
        "resumed_s": spread(resumed),
        "caught_up_s": spread(caught_up),
        "baseline_kills": baseline,
        "baseline_resumed_s": spread(cold_resumed),
        "baseline_caught_up_s": spread(cold_caught_up),
        **figures,
        "blocks_handled_twice": int(twice or 0),
        "traffic_errors": len(traffic.errors),
    }


def _unalerted(engine: Any, w3: Web3, traffic: Traffic, end: int) -> bool:
    from benchmarks.faults import missing

    return missing(w3, engine, traffic, end) > 0


async def _drop(url: str, prefix: str) -> None:
    """The run's stream and lease buckets are the run's: gone with it."""
    import nats as nats_py

    await drop_stream(url, prefix)
    client = await nats_py.connect(url)
    try:
        js = client.jetstream()
        for name in await js.streams_info():
            if name.config.name and name.config.name.startswith(f"KV_{prefix}-lease"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name.config.name)
    finally:
        await client.close()
