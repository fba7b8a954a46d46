"""Fault soak: real ``breakglass serve`` processes SIGKILLed at random moments, N times.

    python -m benchmarks.faults                      # 30 kills, SQLite + in-process bus
    python -m benchmarks.faults --kills 10 --postgres postgresql://postgres@127.0.0.1:5432/test \\
        --nats nats://127.0.0.1:4222                 # PostgreSQL store + JetStream bus
    python -m benchmarks.faults --plan after,before,random   # these kill points, in this order

An interval-mining anvil (0.5 s blocks) runs a guarded mock venue (``contracts/mocks``) and a token. A
traffic thread mints the token every block (the ``traffic`` monitor raises a finding for each mint) and
every few blocks moves a balance across a limit and back (the ``breach`` invariant breaks, then holds
again: each breach is a new one, and the playbook pauses the market numbered after the block the breach
began in, once). breakglass reaches the node through a JSON-RPC proxy that can SIGKILL it on a
guardian transaction: just before forwarding ``eth_sendRawTransaction`` (after the ledger claimed the
action and recorded the signed bytes, before the node has them) or just after the node accepted it.
Each round starts ``serve``, measures the time until its checkpoint reaches the head the chain had when
it was started, and kills it: at a random moment, or at one of those two points (a third each).

Reported, over the whole run (goal: 0, 0, 0, and recovery under 5 s):
- blocks missed: blocks between the first and the last head without a canonical checkpoint row;
- findings lost: traffic transactions whose finding is not in the store's alerts; and the alert delay,
  from the transaction's block (its timestamp: whole seconds) to its alert's first sighting (a finding
  a killed process had taken waits for the restart, or on JetStream for the consumer's ``ack_wait``);
- duplicate actions: guardian transactions on chain repeating another's calldata (the same pause twice);
- recovery: seconds from process start until the checkpoint reaches the head the chain had at the
  start (or, when the killed process had checkpointed that head already, the next block) (median,
  max); split into start-up (process start to its stages running, serve's ``api.process_started``
  log line: Python imports, configuration, the store's schema check, wiring; on a loaded machine the
  imports alone take seconds) and catch-up (from there to the head; the API's own process starts
  meanwhile, beside the pipeline).
Also: breaches begun and how many were acted on (a pause sent for them), for information.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from web3 import Web3

from benchmarks.guarded_venue import BLOCK_TIME, LIMIT, breach_config, guarded_venue
from benchmarks.rpc_proxy import RpcProxy
from breakglass.devnet.solc import compile_contracts

RESULTS = Path(__file__).parent / "results" / "faults.json"
BREAKGLASS = str(Path(sys.executable).parent / "breakglass")
KEY_ENV = "BENCH_GUARDIAN_KEY"
TOGGLE_EVERY = 6
"""blocks between a breach beginning and ending (and ending and beginning again)"""


class KillingProxy(RpcProxy):
    """JSON-RPC between breakglass and the node; SIGKILLs ``victim`` at a guardian transaction when armed."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, [Route("/", self._handle, methods=["POST"])])
        self.victim: int | None = None
        self.armed: str | None = None
        """``before`` (kill instead of forwarding the send) or ``after`` (kill once the node took it)"""
        self.fired = threading.Event()

    def arm(self, mode: str, pid: int) -> None:
        self.fired.clear()
        self.victim, self.armed = pid, mode

    def disarm(self) -> None:
        self.armed = None

    def _kill(self) -> None:
        if self.victim is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.victim, signal.SIGKILL)
        self.armed = None
        self.fired.set()

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        sends = b"eth_sendRawTransaction" in body
        if sends and self.armed == "before":
            self._kill()  # the signed transaction is in the ledger; the node never sees it
            return Response(status_code=503)
        answer = await self.forward(body)
        if sends and self.armed == "after":
            self._kill()  # the node has it; breakglass never hears back
        return answer


@dataclass
class Traffic:
    """Mints every block (a finding each) and moves the holder's balance across the limit and back."""

    w3: Web3
    token: Any
    admin: str
    holder: str
    sink: str
    minted: list[str] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                self.minted.append(
                    self.token.functions.mint(self.sink, 1).transact({"from": self.admin}).to_0x_hex()
                )
                if n % TOGGLE_EVERY == 0:
                    held = self.token.functions.balanceOf(self.holder).call()
                    if held < LIMIT:
                        tx = self.token.functions.mint(self.holder, LIMIT).transact({"from": self.admin})
                        self.breaches.append(tx.to_0x_hex())
                    else:
                        self.token.functions.transfer(self.sink, held).transact({"from": self.holder})
            except Exception as exc:
                self.errors.append(str(exc))
            n += 1
            self.stop.wait(BLOCK_TIME)


def checkpoint(engine: Any, chain_id: int = 31337) -> int:
    try:
        with engine.connect() as conn:
            top = conn.execute(
                text("SELECT MAX(number) FROM chain_blocks WHERE chain_id = :c AND orphaned = :o"),
                {"c": chain_id, "o": False},
            ).scalar()
    except Exception:
        return -1
    return int(top) if top is not None else -1


def spawn(config: Path, log: Any, key: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, KEY_ENV: key}
    argv = [BREAKGLASS, "--log-level", "info", "serve", str(config), "--port", str(port)]
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=config.parent)


MARK = b"api.process_started"
"""serve's first log line once its stages run (imports, configuration, store, wiring done); the API's
process starts then, beside the pipeline."""


def pipeline_started(log: Path, offset: int) -> float | None:
    """The wall-clock time of serve's ``MARK`` line written after ``offset``, if any."""
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            if MARK in line:
                stamp = line.split(b" ", 1)[0].decode().rstrip("Z")
                return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
    return None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def soak(
    kills: int,
    folder: Path,
    *,
    postgres: str | None = None,
    nats: str | None = None,
    seed: int = 20,
    modes: tuple[str, ...] = ("random", "before", "after"),
    plan: list[str] | None = None,
) -> dict[str, Any]:
    """Run the soak; returns the figures (see the module docstring). Kill points are drawn from
    ``modes``, or taken in order from ``plan`` (then ``kills`` is its length)."""
    if plan is not None:
        kills = len(plan)
    rng = random.Random(seed)
    build = compile_contracts(["contracts/mocks"])
    store = f"sqlite:///{folder / 'bg.db'}"
    database: str | None = None
    if postgres is not None:
        import psycopg

        database = f"bg_soak_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        store = postgres.rsplit("/", 1)[0] + "/" + database
    stream = f"soak{uuid.uuid4().hex[:8]}"
    bus = f'bus: {{kind: jetstream, url: "{nats}", prefix: {stream}}}\n' if nats else ""
    with guarded_venue(build, folder, token=("Soak USD", "sUSD")) as world:
        w3, guardian, key = world.w3, world.guardian, world.key
        proxy = KillingProxy(world.node.url).start()
        config = folder / "soak.yaml"
        config.write_text(
            breach_config(protocol="soak", store=store, bus=bus, rpc=proxy.url, holder=world.holder,
                          env=KEY_ENV, traffic=True, rate_limit=100_000),
            encoding="utf-8",
        )  # fmt: skip
        engine = create_engine(store.replace("sqlite:///", "sqlite:///") if "sqlite" in store else
                               store.replace("postgresql://", "postgresql+psycopg://", 1))  # fmt: skip
        traffic = Traffic(w3, world.token, world.admin, world.holder, world.sink)
        mover = threading.Thread(target=traffic.run, daemon=True)
        mover.start()
        recover: list[float] = []
        startup: list[float] = []
        """from the process's start to its stages running (imports, configuration, store, wiring)"""
        catch_up: list[float] = []
        """from there to the head"""
        used: Counter[str] = Counter()
        log = (folder / "serve.log").open("ab")
        proc: subprocess.Popen[bytes] | None = None
        try:
            for round_ in range(kills + 1):
                head = w3.eth.block_number
                # the restarted process must checkpoint a block of its own: a killed one may have
                # checkpointed the head already, and then recovery is handling the next block
                target = max(head, checkpoint(engine) + 1)
                offset = (folder / "serve.log").stat().st_size
                started, started_at = time.monotonic(), time.time()
                proc = spawn(config, log, key, free_port())
                trace = os.environ.get("BENCH_TRACE")
                while checkpoint(engine) < target:
                    if trace:
                        print(
                            f"{time.monotonic() - started:6.2f}s head {head} checkpoint {checkpoint(engine)}"
                        )
                    if proc.poll() is not None:
                        raise RuntimeError(f"serve exited with {proc.returncode}: see {folder / 'serve.log'}")
                    if time.monotonic() - started > 300:
                        raise RuntimeError("serve did not reach the head within 300 s")
                    time.sleep(0.02)
                reached = time.monotonic()
                recover.append(reached - started)
                running = pipeline_started(folder / "serve.log", offset)
                if running is not None:
                    startup.append(running - started_at)
                    catch_up.append(recover[-1] - startup[-1])
                if round_ == kills:  # the last run: let it finish the work, then stop it cleanly
                    traffic.stop.set()
                    mover.join(10)
                    time.sleep(3 * BLOCK_TIME)
                    end = w3.eth.block_number
                    while checkpoint(engine) < end:
                        time.sleep(0.05)
                    # the alert stage catches up; on JetStream a message a killed process had taken but
                    # not acknowledged comes back after the consumer's ack_wait (30 s)
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and missing(w3, engine, traffic, end):
                        time.sleep(0.5)
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(30)
                    break
                mode = plan[round_] if plan is not None else rng.choice(modes)
                if mode == "random":
                    time.sleep(rng.uniform(0.2, 3.0))
                    proc.send_signal(signal.SIGKILL)
                else:
                    proxy.arm(mode, proc.pid)
                    if not proxy.fired.wait(30):
                        proxy.disarm()
                        mode = "random (nothing sent in 30 s)"
                        proc.send_signal(signal.SIGKILL)
                used[mode] += 1
                proc.wait(10)
        finally:
            if proc is not None and proc.poll() is None:  # a failed round leaves no process behind
                proc.kill()
                proc.wait(10)
            traffic.stop.set()
            log.close()
            proxy.stop()
        figures = measure(w3, engine, end, traffic, guardian.address)
        engine.dispose()
    if database is not None and postgres is not None:
        import psycopg

        with psycopg.connect(postgres.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    if nats is not None:
        asyncio.run(drop_stream(nats, stream))
    return {
        "kills": kills,
        "store": "postgresql" if postgres else "sqlite",
        "bus": "jetstream" if nats else "in-process",
        "kill_points": dict(used),
        **figures,
        "recovery_s": spread(recover),
        "startup_s": spread(startup),
        "catch_up_s": spread(catch_up),
        "traffic_errors": len(traffic.errors),
    }


async def drop_stream(url: str, stream: str) -> None:
    """The run's JetStream stream and its consumers are the run's: gone with it."""
    import nats as nats_py

    client = await nats_py.connect(url)
    try:
        with contextlib.suppress(Exception):  # never created (no process got that far)
            await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def spread(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"median": None, "max": None, "all": []}
    return {"median": round(statistics.median(seconds), 2), "max": round(max(seconds), 2),
            "all": [round(s, 2) for s in seconds]}  # fmt: skip


def missing(w3: Web3, engine: Any, traffic: Traffic, end: int) -> int:
    """Traffic transactions up to block ``end`` (from the first checkpoint) without their alert yet."""
    with engine.connect() as conn:
        first = conn.execute(text("SELECT MIN(number) FROM chain_blocks")).scalar()
        found = {str(r[0]).lower() for r in conn.execute(text("SELECT tx_hash FROM alerts"))}
    count = 0
    for tx in traffic.minted:
        number = w3.eth.get_transaction_receipt(tx)["blockNumber"]  # type: ignore[arg-type]
        count += first is not None and first <= number <= end and tx.lower() not in found
    return count


def measure(w3: Web3, engine: Any, end: int, traffic: Traffic, guardian: str) -> dict[str, Any]:
    """Counted from the first block the first process checkpointed (a new store starts at the head)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT number FROM chain_blocks WHERE chain_id = 31337 AND orphaned = :o"), {"o": False}
        ).all()
        alerts = conn.execute(
            text("SELECT tx_hash, first_seen_at FROM alerts WHERE monitor_id = 'traffic'")
        ).all()
    numbers = {int(r[0]) for r in rows}
    first = min(numbers)
    missed = sorted(set(range(first, end + 1)) - numbers)
    found = {str(r[0]).lower(): int(r[1]) for r in alerts}
    checked = lost = 0
    delays: list[float] = []
    """seconds from a traffic transaction's block (its timestamp, whole seconds) to its alert"""
    stamps: dict[int, int] = {}
    for tx in traffic.minted:
        receipt = w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
        number = receipt["blockNumber"]
        if first <= number <= end:
            checked += 1
            lost += tx.lower() not in found
            if tx.lower() in found:
                if number not in stamps:
                    stamps[number] = int(w3.eth.get_block(number)["timestamp"])
                delays.append(found[tx.lower()] / 1000 - stamps[number])
    calls: Counter[str] = Counter()
    for number in range(first, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if str(tx["from"]).lower() == guardian.lower():  # type: ignore[index]
                calls[tx["input"].to_0x_hex()] += 1  # type: ignore[index]
    return {
        "blocks_missed": len(missed),
        "findings_checked": checked,
        "findings_lost": lost,
        "alert_delay_s": {k: v for k, v in spread(delays).items() if k != "all"}
        | {"over_5_s": sum(d > 5 for d in delays)},
        "duplicate_actions": sum(c - 1 for c in calls.values()),
        "guardian_transactions": sum(calls.values()),
        "breaches_begun": sum(
            first <= w3.eth.get_transaction_receipt(tx)["blockNumber"] <= end  # type: ignore[arg-type]
            for tx in traffic.breaches
        ),
        "breaches_acted_on": len(calls),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL: the store there (a new database)")
    parser.add_argument("--nats", default=None, help="a NATS URL: the JetStream bus")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--plan", default=None, help="kill points in order instead of --kills draws: after,before,random"
    )
    args = parser.parse_args(argv if argv is not None else [])
    plan = args.plan.split(",") if args.plan else None
    if plan and set(plan) - {"random", "before", "after"}:
        parser.error(f"--plan takes random, before and after, not {args.plan!r}")
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(
            args.kills, Path(tmp), postgres=args.postgres, nats=args.nats, seed=args.seed, plan=plan
        )
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    name = f"faults-{result['store']}-{result['bus']}.json"
    (RESULTS.parent / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
