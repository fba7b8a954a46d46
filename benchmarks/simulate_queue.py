"""The simulate work queue: pending-transaction verdicts per second with 1, 2 and 4 worker processes
over NATS JetStream, against the in-process judge (the baseline) in the same run.

    BREAKGLASS_TEST_NATS_URL=nats://127.0.0.1:4222 python -m benchmarks.simulate_queue [--txs 2000]
    # writes benchmarks/results/simulate_queue.json; also python -m benchmarks.ha --part simulate

The safe reference venue on anvil (no mining: the state stays put), examples/venue.yaml's monitors
and ``benchmarks.mempool``'s transaction mix, in two sets of ``--txs`` each:

- ``relevant``: only transactions that are simulated (calls into the venue, calls to an unrelated
  ERC-20): each costs one ``eth_simulateV1`` and a judgement;
- ``mix``: the realistic mix (75% ether transfers, skipped after one cached ``eth_getCode``).

For each configuration (in-process; 1, 2, 4 workers, each a ``python -m benchmarks._simulate_worker``
process sharing the queue), a burst: every transaction handed over at once (submitted to the queue,
or to the in-process simulator), timed to the last verdict; tx/s and the seen -> verdict latency
p50/p99 (queueing included: the burst waits). Then a steady stream of ``--paced`` transactions at
``--rate`` tx/s (relevant ones): the latency a verdict takes when the workers keep up.

Where the time goes: CPU seconds of anvil, of the worker processes, of this process (the producer)
and of the NATS server over each burst, per 1,000 transactions; and the node alone: the same
``eth_simulateV1`` requests sent 32 at a time (batched as the simulator batches), no judging: the
node's ceiling on this machine. The load average is recorded around each measurement: the machine
is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from web3 import Web3

from benchmarks.mempool import Mix, summary
from breakglass.config import load_config
from breakglass.detect.service import build_watcher
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import PendingTx
from breakglass.messages.pending import PendingVerdict, PendingWork
from breakglass.simulate import build_mempool, simulation_params
from breakglass.simulate.batch import RpcBatcher

RESULTS = Path(__file__).parent / "results" / "simulate_queue.json"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "venue.yaml"
ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (0 when it cannot be read)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def nats_pid() -> int | None:
    with contextlib.suppress(Exception):
        out = subprocess.run(["pgrep", "-x", "nats-server"], capture_output=True, text=True, check=False)
        return int(out.stdout.split()[0])
    return None


class Workers:
    """``n`` worker processes on ``config``; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, config: Path, n: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "benchmarks._simulate_worker", str(config)]
        self.procs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(n)
        ]

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            assert proc.stdout is not None
            line = ""
            while line.strip() != "ready":
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"worker not ready (exit {proc.poll()})")
                line = proc.stdout.readline()
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def cpu_figures(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """CPU seconds per 1,000 transactions, per process kind."""
    return {k: round((after[k] - before[k]) * 1000 / n, 3) for k in before}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def in_process(loaded: Any, anvil_pid: int | None, sets: dict[str, list[PendingTx]],
                     paced: list[PendingTx], rate: float) -> dict[str, Any]:  # fmt: skip
    """The baseline: today's judge in this process (``build_mempool`` without a queue)."""
    watcher = build_watcher(loaded, None)
    service = build_mempool(loaded, watcher, None)
    await service.start()
    simulator = service.simulator
    out: dict[str, Any] = {}
    for name, items in sets.items():
        latencies: list[float] = []
        simulator.on_verdict = lambda v, into=latencies: into.append(v.latency_ms)
        before = {"anvil": cpu_seconds(anvil_pid), "judge_process": time.process_time(),
                  "nats": cpu_seconds(nats_pid())}  # fmt: skip
        load = loadavg()
        started = time.monotonic()
        for pending in items:
            await simulator.handle(PendingTx(pending.tx, time.monotonic() * 1000.0))
        await simulator.drain()
        elapsed = time.monotonic() - started
        after = {"anvil": cpu_seconds(anvil_pid), "judge_process": time.process_time(),
                 "nats": cpu_seconds(nats_pid())}  # fmt: skip
        out[name] = {"txs": len(items), "seconds": round(elapsed, 3),
                     "tx_per_s": round(len(items) / elapsed, 1), "latency": summary(latencies),
                     "cpu_s_per_1000": cpu_figures(before, after, len(items)),
                     "loadavg_before": load, "loadavg_after": loadavg()}  # fmt: skip
    latencies = []
    simulator.on_verdict = lambda v: latencies.append(v.latency_ms)
    started = time.monotonic()
    for i, pending in enumerate(paced):
        if (wait := started + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        await simulator.handle(PendingTx(pending.tx, time.monotonic() * 1000.0))
    await simulator.drain()
    out["paced"] = {"rate": rate, "txs": len(paced), "latency": summary(latencies)}
    simulator.on_verdict = None
    out["errors"] = simulator.stats.errors
    await watcher.close()
    return out


async def node_only(loaded: Any, anvil_pid: int | None, items: list[PendingTx]) -> dict[str, Any]:
    """The node's ceiling: the same ``eth_simulateV1`` requests, 32 at a time, batched, no judging."""
    watcher = build_watcher(loaded, None)
    await watcher.start()
    service = build_mempool(loaded, watcher, None)
    reads = service.simulator.judge.reads
    batcher = RpcBatcher(watcher.rpc)
    slots = asyncio.Semaphore(32)

    async def one(pending: PendingTx) -> None:
        async with slots:
            await batcher.batch([("eth_simulateV1", simulation_params(pending.tx, reads))])

    before = (cpu_seconds(anvil_pid), time.process_time())
    started = time.monotonic()
    await asyncio.gather(*(one(p) for p in items))
    elapsed = time.monotonic() - started
    anvil_cpu, own_cpu = cpu_seconds(anvil_pid) - before[0], time.process_time() - before[1]
    await watcher.close()
    return {"txs": len(items), "tx_per_s": round(len(items) / elapsed, 1),
            "anvil_cpu_s_per_1000": round(anvil_cpu * 1000 / len(items), 3),
            "client_cpu_s_per_1000": round(own_cpu * 1000 / len(items), 3)}  # fmt: skip


async def through_queue(config: Path, loaded: Any, anvil_pid: int | None, n_workers: int,
                        sets: dict[str, list[PendingTx]], paced: list[PendingTx],
                        rate: float) -> dict[str, Any]:  # fmt: skip
    """``n_workers`` worker processes sharing the queue; this process submits and listens to verdicts."""
    from breakglass.bus.jetstream import JetStreamBus
    from breakglass.bus.workqueue import JetStreamWorkQueue
    from breakglass.simulate.worker import QUEUE

    settings = loaded.settings.bus
    bus = await JetStreamBus(settings.url.get_secret_value(), prefix=settings.prefix).connect()
    queue = await JetStreamWorkQueue(bus, QUEUE).open()
    workers = Workers(config, n_workers)
    verdicts: dict[str, PendingVerdict] = {}
    arrived = asyncio.Event()

    async def listen() -> None:
        async for verdict in queue.verdicts():
            verdicts[verdict.tx_hash] = verdict
            arrived.set()

    listener = asyncio.create_task(listen())
    chain_id = int(Web3(Web3.HTTPProvider(loaded.rpc_urls()[0])).eth.chain_id)
    out: dict[str, Any] = {"workers": n_workers}
    try:
        await asyncio.to_thread(workers.wait_ready)
        await asyncio.sleep(0.5)  # the verdict listener's subscription is in place

        async def submit(pending: PendingTx) -> None:
            work = PendingWork(pending.tx, seen_at=time.time() * 1000.0, head=-1, chain_id=chain_id)
            await queue.submit(work, work.key)

        async def wait_for(hashes: set[str]) -> None:
            async with asyncio.timeout(600):
                while not hashes <= verdicts.keys():
                    arrived.clear()
                    await arrived.wait()

        for name, items in sets.items():
            hashes = {p.tx.hash for p in items}
            before = {"anvil": cpu_seconds(anvil_pid), "workers": workers.cpu(),
                      "producer": time.process_time(), "nats": cpu_seconds(nats_pid())}  # fmt: skip
            load = loadavg()
            started = time.monotonic()
            for i in range(0, len(items), 100):  # as fast as the server stores them
                await asyncio.gather(*(submit(p) for p in items[i : i + 100]))
            submitted = time.monotonic() - started
            await wait_for(hashes)
            elapsed = time.monotonic() - started
            after = {"anvil": cpu_seconds(anvil_pid), "workers": workers.cpu(),
                     "producer": time.process_time(), "nats": cpu_seconds(nats_pid())}  # fmt: skip
            mine = [verdicts[h] for h in hashes]
            share: dict[str, int] = {}
            for v in mine:
                share[v.worker] = share.get(v.worker, 0) + 1
            out[name] = {"txs": len(items), "seconds": round(elapsed, 3),
                         "tx_per_s": round(len(items) / elapsed, 1),
                         "submitted_per_s": round(len(items) / submitted, 1),
                         "latency": summary([v.latency_ms for v in mine]),
                         "per_worker": sorted(share.values(), reverse=True),
                         "errors": sum(1 for v in mine if v.error),
                         "cpu_s_per_1000": cpu_figures(before, after, len(items)),
                         "loadavg_before": load, "loadavg_after": loadavg()}  # fmt: skip
        started = time.monotonic()
        for i, pending in enumerate(paced):
            if (wait := started + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            await submit(pending)
        await wait_for({p.tx.hash for p in paced})
        out["paced"] = {"rate": rate, "txs": len(paced),
                        "latency": summary([verdicts[p.tx.hash].latency_ms for p in paced])}  # fmt: skip
    finally:
        workers.stop()
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        _nc, js = bus.connection()
        for stream in (settings.prefix, queue.stream):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await bus.close()
    return out


def write_config(folder: Path, node: Anvil, url: str, prefix: str) -> Path:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config.update(deployment="manifest.json", store={"url": f"sqlite:///{folder / 'bg.db'}"},
                  mempool={"enabled": True, "ws": node.ws_url},
                  bus={"kind": "jetstream", "url": url, "prefix": prefix})  # fmt: skip
    config.pop("attack_simulation", None)
    path = folder / f"{prefix}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.simulate_queue")
    parser.add_argument("--txs", type=int, default=2000, help="transactions in each burst")
    parser.add_argument("--paced", type=int, default=1000, help="transactions in the steady stream")
    parser.add_argument("--rate", type=float, default=200.0, help="steady stream, tx/s")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    parser.add_argument("--nats", default=os.environ.get("BREAKGLASS_TEST_NATS_URL"), help="nats://host:4222")
    args = parser.parse_args(argv or [])
    url = args.nats
    if not url:
        print("simulate_queue: skipped, it needs a NATS JetStream server "
              "(BREAKGLASS_TEST_NATS_URL=nats://127.0.0.1:4222)")  # fmt: skip
        return {"skipped": "no BREAKGLASS_TEST_NATS_URL"}
    counts = [int(n) for n in args.workers.split(",")]
    build = compile_contracts()
    results: dict[str, Any] = {"cores": os.cpu_count(), "loadavg_start": loadavg()}
    with tempfile.TemporaryDirectory() as tmp, Anvil(AnvilOptions(mode=BlockMode.AUTO)) as node:
        folder = Path(tmp)
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions())
        deployer.manifest(node.url).write(folder / "manifest.json")
        unrelated = deployer.deploy("unrelated_token", "MockERC20", "Other", "OTH", 18).address
        mixes = [Mix(w3, venue, unrelated, seed=s) for s in (21, 22, 23)]
        node.rpc("evm_setAutomine", False)
        relevant: list[PendingTx] = []
        while len(relevant) < args.txs:
            _raw, pending, kind = mixes[0].one()
            if kind != "transfer":
                relevant.append(pending)
        sets = {"relevant": relevant, "mix": [mixes[1].one()[1] for _ in range(args.txs)]}
        paced: list[PendingTx] = []
        while len(paced) < args.paced:
            _raw, pending, kind = mixes[2].one()
            if kind != "transfer":
                paced.append(pending)
        base_config = write_config(folder, node, url, f"bench_{uuid.uuid4().hex[:8]}")
        loaded = load_config(base_config)
        results["node_only"] = asyncio.run(node_only(loaded, node.pid, relevant))
        results["in_process"] = asyncio.run(in_process(loaded, node.pid, sets, paced, args.rate))
        for n in counts:
            # a queue of its own per worker count: the same transactions, not dropped as resubmissions
            config = write_config(folder, node, url, f"bench_{uuid.uuid4().hex[:8]}")
            results[f"workers_{n}"] = asyncio.run(
                through_queue(config, load_config(config), node.pid, n, sets, paced, args.rate)
            )
    results["loadavg_end"] = loadavg()
    print(f"simulate work queue, {args.txs} txs per burst, {os.cpu_count()} cores, "
          f"load {results['loadavg_start']} -> {results['loadavg_end']}")  # fmt: skip
    node_only_ = results["node_only"]
    print(f"  node alone (eth_simulateV1, 32 in flight, batched): {node_only_['tx_per_s']} tx/s, "
          f"anvil {node_only_['anvil_cpu_s_per_1000']} CPU s per 1000")  # fmt: skip
    for key in ["in_process", *(f"workers_{n}" for n in counts)]:
        row = results[key]
        for name in ("relevant", "mix"):
            r = row[name]
            print(f"  {key:>10} {name:>8}: {r['tx_per_s']:>7} tx/s, p50 {r['latency']['p50_ms']} ms, "
                  f"p99 {r['latency']['p99_ms']} ms, cpu/1000 {r['cpu_s_per_1000']}, "
                  f"load {r['loadavg_before']}")  # fmt: skip
        paced_ = row["paced"]
        print(f"  {key:>10} paced {paced_['rate']} tx/s: p50 {paced_['latency']['p50_ms']} ms, "
              f"p99 {paced_['latency']['p99_ms']} ms")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
