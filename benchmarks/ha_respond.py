"""High availability, part ``respond`` of ``python -m benchmarks.ha`` (issue 19): the active responder
replica SIGKILLed in the middle of an incident, N times.

    python -m benchmarks.ha --part respond                     # 10 kills, the lease in NATS KV
    python -m benchmarks.ha --part respond --lease postgres --kills 12 --ttl 2

An interval-mining anvil (0.5 s blocks) runs a guarded mock venue; a traffic thread breaks an invariant
every few blocks (each breach: the playbook pauses the market numbered after the block the breach began
in, once). One detector process (``breakglass serve --role detect``) publishes findings on JetStream;
two responder replicas (``breakglass serve CONFIG --role respond``: the same configuration, the same
guardian key, a lease in NATS KV or PostgreSQL) share the PostgreSQL ledger. Each replica reaches the
node through a JSON-RPC proxy that knows which replica sends: each round, the proxy SIGKILLs the lease
holder as its next guardian transaction is about to leave (claimed and signed in the ledger, never
broadcast: the worst moment, something is owed), and measures the time until the standby sends it. The
killed replica is started again (the new standby) before the next round.

Reported: failover (kill -> the owed transaction sent by the standby) p50/max, and the same less 2/3
ttl (an upper bound of the time after the lease expired: the last renewal came at most ttl/3 before the
kill); whether the standby sent the very bytes the dead leader signed; duplicate guardian transactions
on chain (the same calldata twice: goal 0); lost actions (breaches begun while the detector ran without
their pause on chain: goal 0).

``Cluster`` is also what ``tests/e2e/ha/test_responder_failover.py`` drives (fewer kills, a partition)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.faults import Traffic, drop_stream, free_port
from benchmarks.guarded_venue import breach_config, guarded_venue
from benchmarks.rpc_proxy import RpcProxy

BREAKGLASS = str(Path(sys.executable).parent / "breakglass")
KEY_ENV = "BENCH_GUARDIAN_KEY"


@dataclass
class Send:
    at: float
    """``time.monotonic()`` when the proxy received it"""
    tag: str
    tx_hash: str
    forwarded: bool


class SendProxy(RpcProxy):
    """JSON-RPC between each replica (path ``/<tag>``) and the node: records every guardian
    transaction with the replica that sent it, and SIGKILLs the armed replica as its next one is about
    to leave (not forwarded: the node never sees it)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, [Route("/{tag}", self._handle, methods=["POST"])])
        self.sends: list[Send] = []
        self.armed: tuple[str, int] | None = None
        """(tag, pid) to kill at its next send"""
        self.fired = threading.Event()
        self.killed: Send | None = None

    def arm(self, tag: str, pid: int) -> None:
        self.fired.clear()
        self.killed = None
        self.armed = (tag, pid)

    async def _handle(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        body = await request.body()
        raw = _raw_tx(body)
        if raw is not None:
            send = Send(time.monotonic(), tag, "0x" + keccak(raw).hex(), True)
            if self.armed is not None and self.armed[0] == tag:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.armed[1], signal.SIGKILL)
                self.armed = None
                send.forwarded = False
                self.killed = send
                self.sends.append(send)
                self.fired.set()
                return Response(status_code=503)
            self.sends.append(send)
        return await self.forward(body)


def _raw_tx(body: bytes) -> bytes | None:
    if b"eth_sendRawTransaction" not in body:
        return None
    message = json.loads(body)
    for call in message if isinstance(message, list) else [message]:
        if call.get("method") == "eth_sendRawTransaction":
            return bytes.fromhex(str(call["params"][0]).removeprefix("0x"))
    return None


class TcpProxy:
    """A TCP forwarder (one replica's NATS connection) that can be cut: ``cut()`` closes every
    connection and refuses new ones, as a network partition would."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._pipe, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers -= {writer, up_writer}

    def cut(self) -> None:
        async def cut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                with contextlib.suppress(Exception):
                    writer.transport.abort()

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()

        async def cancel() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class Replica:
    tag: str
    log: Path
    nats: TcpProxy
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    offset: int = 0
    """the log's size when it was last started: its start-up line comes after"""


@dataclass
class Cluster:
    """One detector and two responder replicas on anvil, PostgreSQL and JetStream (see the module
    docstring). Use as a context manager; everything started is stopped on exit."""

    folder: Path
    postgres: str
    nats: str
    lease: str = "nats"
    ttl: float = 2.0
    replicas: dict[str, Replica] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        from breakglass.devnet.solc import compile_contracts
        from breakglass.store.migrate import upgrade
        from breakglass.testing import postgres_database

        self.store = self._stack.enter_context(postgres_database(self.postgres))
        self.stream = f"ha{uuid.uuid4().hex[:8]}"
        self._stack.callback(lambda: asyncio.run(drop_stream(self.nats, self.stream)))
        self._stack.callback(lambda: asyncio.run(_drop_lease_buckets(self.nats, self.stream)))
        world = self._stack.enter_context(
            guarded_venue(compile_contracts(["contracts/mocks"]), self.folder, token=("HA USD", "hUSD"))
        )
        self.w3 = w3 = world.w3
        self.holder, self.guardian, self.key = world.holder, world.guardian.address, world.key
        self.proxy = SendProxy(world.node.url).start()
        self._stack.callback(self.proxy.stop)
        self.config = self.folder / "ha.yaml"
        bus = (
            f'bus: {{kind: jetstream, url: "${{BG_NATS}}", prefix: {self.stream}}}\n'
            f"ha: {{lease: {self.lease}, ttl_seconds: {self.ttl}}}\n"
        )
        self.config.write_text(
            breach_config(protocol="ha", store=self.store, bus=bus, rpc="${BG_RPC}", holder=self.holder,
                          env=KEY_ENV, rate_limit=100_000),
            encoding="utf-8",
        )  # fmt: skip
        upgrade(self.store)
        self._stack.callback(self._stop_processes)
        self.detector_log = self.folder / "detector.log"
        self.detector = self._spawn_detector()
        self.detector_restarts = 0
        self._stopping = threading.Event()
        self._stack.callback(self._stopping.set)
        threading.Thread(target=self._supervise_detector, daemon=True).start()
        host, port = self.nats.removeprefix("nats://").rsplit(":", 1)
        for tag in ("a", "b"):
            tcp = TcpProxy(host, int(port)).start()
            self._stack.callback(tcp.stop)
            self.replicas[tag] = Replica(tag, self.folder / f"replica-{tag}.log", tcp)
        self.traffic = Traffic(w3, world.token, world.admin, self.holder, world.sink)
        self.mover = threading.Thread(target=self.traffic.run, daemon=True)
        self.first_block = w3.eth.block_number

    def _spawn_detector(self) -> subprocess.Popen[bytes]:
        argv = [BREAKGLASS, "serve", str(self.config), "--role", "detect", "--port", str(free_port())]
        return self._spawn(argv, self.detector_log, self.proxy.url + "/detector", self.nats)

    def _supervise_detector(self) -> None:
        """Start the detector again if it stops (its own detect lease lost under load: it exits, as
        a supervisor would restart it): the responders are what is measured here."""
        while not self._stopping.wait(0.5):
            if self.detector.poll() is not None and not self._stopping.is_set():
                self.detector_restarts += 1
                self.detector = self._spawn_detector()

    def start_replicas(self, *tags: str) -> None:
        """Start these replicas (all at once), then wait until each runs its replica loop."""
        tags = tags or tuple(self.replicas)
        for tag in tags:
            self._spawn_replica(self.replicas[tag])
        for tag in tags:
            self.wait_started(tag)

    def start_traffic(self, within: float = 120.0) -> None:
        """Start the traffic once the detector follows the chain (its first block checkpointed)."""
        deadline = time.monotonic() + within
        while self._first_checkpoint() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the detector checkpointed nothing within {within:g} s: see {self.detector_log}"
                )
            time.sleep(0.1)
        self.mover.start()

    def _first_checkpoint(self) -> int | None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.store.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                first = conn.execute(text("SELECT MIN(number) FROM chain_blocks")).scalar()
        except Exception:  # the table is there after the migration; a connection may fail under load
            return None
        finally:
            engine.dispose()
        return None if first is None else int(first)

    def _spawn(self, argv: list[str], log: Path, rpc: str, nats: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, KEY_ENV: self.key, "BG_RPC": rpc, "BG_NATS": nats}
        with log.open("ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.folder)

    def _spawn_replica(self, replica: Replica) -> None:
        argv = [BREAKGLASS, "serve", str(self.config), "--role", "respond", "--port", str(free_port())]
        replica.offset = replica.log.stat().st_size if replica.log.exists() else 0
        env_nats = f"nats://127.0.0.1:{replica.nats.port}"
        replica.proc = self._spawn(argv, replica.log, f"{self.proxy.url}/{replica.tag}", env_nats)
        replica.starts += 1

    def wait_started(self, tag: str, within: float = 120.0) -> None:
        replica = self.replicas[tag]
        deadline = time.monotonic() + within
        while b"respond.replica_started" not in _tail(replica.log, replica.offset):
            if replica.proc is not None and replica.proc.poll() is not None:
                raise RuntimeError(f"replica {tag} exited with {replica.proc.returncode}: see {replica.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {tag} did not start within {within:g} s: see {replica.log}")
            time.sleep(0.05)

    def leader(self, within: float = 60.0) -> str:
        """The tag of the replica holding the lease (waits until one does)."""
        pids = {r.proc.pid: tag for tag, r in self.replicas.items() if r.proc is not None}
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            holder = asyncio.run(self._holder())
            if holder is not None:
                pid = int(holder.rsplit("-", 1)[-1])
                if pid in pids and self.replicas[pids[pid]].proc.poll() is None:  # type: ignore[union-attr]
                    return pids[pid]
            time.sleep(0.1)
        raise RuntimeError("no replica took the lease")

    async def _holder(self) -> str | None:
        name = f"respond-{self.guardian.lower()}"
        if self.lease == "nats":
            from breakglass.ha.nats import NatsLeaseBackend

            nats_backend = NatsLeaseBackend(self.nats, prefix=self.stream)
            try:
                return await nats_backend.holder(name, self.ttl)
            finally:
                await nats_backend.close()
        from breakglass.ha.postgres import PostgresLeaseBackend

        pg_backend = PostgresLeaseBackend(self.store)
        try:
            return await pg_backend.holder(name)
        finally:
            await pg_backend.close()

    def kill_at_next_send(self, tag: str, within: float = 60.0) -> Send:
        """SIGKILL replica ``tag`` as its next guardian transaction is about to leave."""
        proc = self.replicas[tag].proc
        assert proc is not None
        self.proxy.arm(tag, proc.pid)
        if not self.proxy.fired.wait(within):
            self.proxy.armed = None
            raise RuntimeError(f"replica {tag} sent nothing within {within:g} s")
        proc.wait(10)
        assert self.proxy.killed is not None
        return self.proxy.killed

    def next_send(self, after: float, tag: str | None = None, within: float = 60.0) -> Send:
        """The first transaction forwarded after ``after`` (from ``tag``, if given)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for send in list(self.proxy.sends):
                if send.at > after and send.forwarded and (tag is None or send.tag == tag):
                    return send
            time.sleep(0.01)
        raise RuntimeError(f"no transaction sent within {within:g} s")

    def settle(self, within: float = 90.0) -> dict[str, Any]:
        """Stop the traffic, wait until every breach begun is paused (or ``within``), and count."""
        self.traffic.stop.set()
        self.mover.join(10)
        deadline = time.monotonic() + within
        figures = self.count()
        while figures["lost_actions"] and time.monotonic() < deadline:
            time.sleep(1.0)
            figures = self.count()
        return figures

    def count(self) -> dict[str, Any]:
        """Guardian transactions on chain: duplicates (same calldata) and breaches without a pause."""
        w3 = self.w3
        calls: Counter[str] = Counter()
        paused: set[int] = set()
        end = w3.eth.block_number
        for number in range(self.first_block, end + 1):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                if str(tx["from"]).lower() == self.guardian.lower():  # type: ignore[index]
                    data = tx["input"].to_0x_hex()  # type: ignore[index]
                    calls[data] += 1
                    paused.add(int(data[-64:], 16))
        begun = [int(w3.eth.get_transaction_receipt(tx)["blockNumber"]) for tx in list(self.traffic.breaches)]
        first = self._first_checkpoint()  # breaches begun while the detector followed the chain
        begun = [b for b in begun if first is not None and b > first]
        return {
            "guardian_transactions": sum(calls.values()),
            "duplicate_transactions": sum(c - 1 for c in calls.values()),
            "breaches_begun": len(begun),
            "lost_actions": len([b for b in begun if b not in paused]),
            "detector_restarts": self.detector_restarts,
        }

    def _stop_processes(self) -> None:
        self._stopping.set()
        procs = [r.proc for r in self.replicas.values()] + [getattr(self, "detector", None)]
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            if proc is not None:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "traffic"):
            self.traffic.stop.set()
        self._stack.close()


def _tail(path: Path, offset: int) -> bytes:
    if not path.exists():
        return b""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read()


async def _drop_lease_buckets(url: str, prefix: str) -> None:
    import nats as nats_py

    client = await nats_py.connect(url)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name.startswith(f"KV_{prefix}-lease"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(info.config.name)
    finally:
        await client.close()


def responder_failover(cluster: Cluster, kills: int) -> dict[str, Any]:
    """``kills`` rounds: kill the leader at its next send, time the standby's send, restart it."""
    failover: list[float] = []
    same_bytes = 0
    for _ in range(kills):
        leader = cluster.leader()
        standby = next(tag for tag in cluster.replicas if tag != leader)
        killed = cluster.kill_at_next_send(leader)
        sent = cluster.next_send(killed.at, tag=standby)
        failover.append(sent.at - killed.at)
        same_bytes += sent.tx_hash == killed.tx_hash
        cluster.start_replicas(leader)  # the killed one comes back as the standby
    return {
        "kills": kills,
        "failover_s": spread(failover),
        "after_expiry_s_at_most": spread([max(0.0, f - cluster.ttl * 2 / 3) for f in failover]),
        "owed_sent_as_the_same_transaction": same_bytes,
    }


def spread(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"p50": None, "max": None, "all": []}
    return {"p50": round(statistics.median(seconds), 3), "max": round(max(seconds), 3),
            "all": [round(s, 3) for s in seconds]}  # fmt: skip


def respond_part(
    kills: int, folder: Path, *, postgres: str, nats: str, ttl: float, lease: str
) -> dict[str, Any]:
    """The ``respond`` part of ``python -m benchmarks.ha``."""
    with Cluster(folder, postgres, nats, lease=lease, ttl=ttl) as cluster:
        cluster.start_replicas()  # both at once: one leads
        cluster.start_traffic()
        figures = responder_failover(cluster, kills)
        figures |= cluster.settle()
    return {"lease": lease, "ttl_s": ttl, **figures}
