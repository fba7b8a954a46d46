"""Detection benchmark: per-block latency, backfill throughput vs the node's raw fetch rate, memory.

    python -m benchmarks.detection            # prints figures, writes benchmarks/results/detection.json
BREAKGLASS_BENCH_QUIET_ONLY=1 python -m benchmarks.detection   # the near-empty backfill rounds only

On a fresh anvil with the probe protocol (contracts/mocks/ProbeVault.sol) and 20 invariants + 20
event monitors:
1. latency, block seen (head poll answered) -> findings published, per block with traffic; baseline in
   the same run: a plain web3.py (AsyncWeb3) polling loop doing the same checks the usual way (block,
   receipts, one eth_call per invariant read, event decoding per monitor);
2. backfill throughput of the follower + engine (fetch, decode, reads, detect, checkpoint) as a
   fraction of the node's raw block+receipts fetch rate (same client and batching, no work), on two
   ranges: 150 busy blocks (50 transactions each: token transfers, one in ten a vault deposit), and
   14,000 near-empty ones (a deposit then six empty blocks, what a devnet makes);
3. resident memory while following 10,000 blocks, sampled every 1,000.
Ratios are medians over rounds of (raw fetch, node work, full backfill, the same with the backfill
worker process, events-only backfill, the same with the worker) run back to back; each round also checks
that the worker's run published the same findings in the same order as the one-process run, and
records the load average (the machine may be shared). On near-empty blocks the node serves a block in
~35 us and one Python process is the bottleneck; the worker (``detect/offload.py``) decodes and runs
the stateless monitors on the windows beyond the state horizon while this process fetches.

The near-empty range was 2,000 blocks until issue 19's third pass: ~0.1-0.35 s of raw fetch, so a
step's fixed costs (reading the checkpoint, the head, filling the pipeline, the last checkpoint write:
~10-15 ms) and scheduling noise on a shared machine made single rounds range 36-102%. It is now 14,000
blocks (2,000 deposits, each followed by six empty blocks), so a round measures the steady state; the
raw fetch and every backfill of a round read the same range, rounds run back to back, ratios are
medians of ``BACKFILL_ROUNDS`` (>= 5) per-round ratios, and each round prints the 1-minute load.

Node work (issue 19, fourth pass): the raw fetch asks the node for blocks and receipts only, but a
backfill also makes it execute the invariants' state reads of the blocks within the 128-block state
horizon (historical ``eth_call``: anvil runs them one at a time). A second baseline in each round, the
raw fetch plus the very state-read batches the engine sent in a first untimed backfill of the same
range (recorded from the engine's RPC client, not rebuilt here; no decoding, no detection), separates
that node work from this process's overhead: ``ratio_vs_node_work`` beside ``ratio`` (the issue's
figure, which stays against blocks + receipts only), and the state reads' wall time per round.

Two layouts (issue 19, seventh pass). Every backfill range is measured twice: **shared**, anvil and
this process on all the machine's cores, as before; and **own cores**, anvil's threads pinned to one
core and this process's (and its worker's) to another (``sched_setaffinity``), the layout of
production, where the node runs on its own machine and breakglass has a core to itself. On two
cores, shared, the raw fetch alone keeps both busy (anvil takes ~1.5 of them), so any CPU this
process spends slows the node it is compared with; own cores, each side has what it has in
production and the ratio says whether this process keeps up with the node. The node keeps the
states of its last 256 blocks in memory (``--prune-history 256``), as a full node keeps its last 128
(what the engine's 128-block state horizon is for); anvil's default keeps a few and writes older
states to disk, and a historical ``eth_call`` then costs it 5.5-7.5 ms of CPU against 0.5 at the
head (``docs/detection.md``, *The seventh pass*).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from breakglass.bus import InProcessBus, Topics
from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.config import load_config
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.detect.reads import MulticallExecutor, parse_call
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.errors import RpcError
from breakglass.store.db import Base, make_engine, make_sessionmaker

RESULTS = Path(__file__).parent / "results" / "detection.json"
USD = 10**6
SCALE = float(os.environ.get("BREAKGLASS_BENCH_SCALE", "1"))  # < 1 for a quick look, not for figures
LATENCY_BLOCKS = int(200 * SCALE)
BACKFILL_BLOCKS = int(14_000 * SCALE)  # near-empty: long enough that a step's fixed costs do not weigh
BUSY_BLOCKS = int(150 * SCALE)
BUSY_TXS = 50
BACKFILL_ROUNDS = 5
MEMORY_BLOCKS = int(10_000 * SCALE)

StateReads = dict[int | None, list[list[Any]]]
"""The engine's state-read batches in a backfill, by the first block of the window that sent them"""
_WINDOW: contextvars.ContextVar[int | None] = contextvars.ContextVar("window", default=None)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def monitors_yaml() -> str:
    out = []
    reads = [
        "vault.totalAssets()",
        "vault.totalLiabilities()",
        "usd.balanceOf(vault)",
        "vault.maxLeverage()",
        "usd.totalSupply()",
        "vault.paused()",
    ]
    for i in range(20):
        a, b = reads[i % 3], reads[(i + 1) % 3]
        out.append(
            f"  - id: inv-{i}\n    kind: invariant\n    calls:\n      a: {a}\n      b: {b}\n"
            f"      lev: {reads[3]}\n      supply: {reads[4]}\n"
            f"    expect: a + {i}.0 >= b - 1e30 && lev <= 100 && supply >= 0\n"
        )
    for i in range(20):
        event = ["Deposit", "Withdraw", "ParameterChanged", "RoleGranted"][i % 4]
        where = "args.amount > 0" if event in ("Deposit", "Withdraw") else "true"
        out.append(
            f"  - id: ev-{i}\n    kind: event\n    contract: vault\n"
            f"    event: {event}\n    where: '{where}'\n"
        )
    return "".join(out)


def setup(node: Anvil, folder: Path) -> tuple[Web3, Any, Any, Path]:
    w3 = Web3(Web3.HTTPProvider(node.url))
    deployer = Deployer(w3, compile_contracts(["contracts/mocks"]))
    admin = w3.eth.accounts[0]
    token = deployer.deploy("usd", "MockERC20", "Test USD", "tUSD", 6)
    vault = deployer.deploy("vault", "ProbeVault", token.address, admin)
    multicall = deployer.deploy("multicall", "ProbeMulticall")
    deployer.manifest(node.url).write(folder / "manifest.json")
    config = folder / "bench.yaml"
    config.write_text(  # chain.multicall: a backfill reads past blocks through it (docs/detection.md)
        f"protocol: bench\ndeployment: manifest.json\nchain:\n  multicall: '{multicall.address}'\n"
        f"monitors:\n{monitors_yaml()}",
        encoding="utf-8",
    )
    for user in w3.eth.accounts[1:6]:
        token.functions.mint(user, 10**15).transact({"from": user})
        token.functions.approve(vault.address, 2**255).transact({"from": user})
    return w3, token, vault, config


def traffic(w3: Web3, vault: Any, i: int) -> None:
    user = w3.eth.accounts[1 + i % 5]
    w3.eth.wait_for_transaction_receipt(vault.functions.deposit(1 + i).transact({"from": user}))


def busy_traffic(node: Anvil, w3: Web3, token: Any, vault: Any, blocks: int) -> None:
    """``blocks`` blocks of ``BUSY_TXS`` transactions each, as on a chain people use: nine in ten
    move the token between users (logs of a configured contract that no event monitor wants), one in
    ten deposits into the vault (five event monitors fire on each)."""
    users = w3.eth.accounts[1:6]
    node.rpc("evm_setAutomine", False)
    try:
        for _ in range(blocks):
            for k in range(BUSY_TXS):
                sender = users[k % 5]
                if k % 10 == 0:
                    vault.functions.deposit(1 + k).transact({"from": sender, "gas": 200_000})
                else:
                    to = users[(k + 1) % 5]
                    token.functions.transfer(to, 1 + k).transact({"from": sender, "gas": 100_000})
            node.mine(1)
    finally:
        node.rpc("evm_setAutomine", True)


def quiet_traffic(node: Anvil, w3: Web3, vault: Any, blocks: int) -> None:
    """``blocks`` near-empty blocks: a deposit, then six empty blocks (``anvil_mine``), and again.
    Automine mines each deposit as it is sent, so no receipt is awaited (web3's wait polls every
    0.1 s: 14,000 blocks took ~10 minutes); the last deposit's receipt is checked."""
    users = w3.eth.accounts[1:6]
    sent = None
    for i in range(blocks // 7):
        sent = vault.functions.deposit(1 + i).transact({"from": users[i % 5], "gas": 200_000})
        node.mine(6)
    if sent is not None:
        assert w3.eth.get_transaction_receipt(sent)["status"] == 1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p99": round(pct(values, 0.99), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


NODE = AnvilOptions(extra_args=("--prune-history", "256"))
"""The benchmark's node: anvil, the states of its last 256 blocks kept in memory (module docstring)."""


def own_cores_available() -> bool:
    return hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return [pid]


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` on ``cpus`` (threads started later inherit their starter's set)."""
    for tid in _threads(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)


@contextlib.contextmanager
def own_cores(node: Anvil) -> Iterator[None]:
    """The production layout on one machine: anvil on one core, this process (and the backfill
    worker it starts meanwhile) on another; all cores again afterwards."""
    cpus = sorted(os.sched_getaffinity(0))
    assert len(cpus) >= 2 and node.pid is not None
    node_core, our_core = {cpus[0]}, {cpus[1]}
    _pin(node.pid, node_core)
    _pin(os.getpid(), our_core)
    try:
        yield
    finally:
        _pin(os.getpid(), set(cpus))
        _pin(node.pid, set(cpus))


async def make_stack(
    node: Anvil, config_path: Path, db_path: Path, *, worker: bool = False
) -> tuple[Follower, DetectionEngine, RpcClient, Any]:
    """``worker``: with the backfill worker process, started (and ready) before this returns, as in a
    service that has been running: its start (a new Python process, ~1 s) is not in the timings."""
    config = load_config(config_path, environ={})
    rpc = RpcClient.from_urls([node.url], timeout=60.0)
    built = build_detectors(config, chain_id=31337)
    bus = InProcessBus()
    engine = DetectionEngine(
        built.detectors,
        chain_id=31337,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        bus=bus,
        multicall=config.settings.chain.multicall,
        backfill_worker=worker,
    )
    if engine.worker is not None:
        await engine.worker.start()
    db = make_engine(f"sqlite:///{db_path}")
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    follower = Follower(
        rpc, CheckpointStore(make_sessionmaker(db)), engine, chain_id=31337, batch_blocks=25, prefetch=4
    )
    return follower, engine, rpc, (db, bus)


async def latency_breakglass(node: Anvil, w3: Web3, vault: Any, config: Path, folder: Path) -> dict[str, Any]:
    follower, engine, rpc, (db, bus) = await make_stack(node, config, folder / "lat.db")
    follower.start_block = w3.eth.block_number + 1
    findings = bus.subscribe(Topics.FINDINGS, "bench")

    async def drain() -> None:  # a consumer, as in serve: the follower checkpoints once it took them
        async for _finding in findings:
            pass

    consumer = asyncio.create_task(drain())
    seen: list[float] = []
    original_head = follower._head

    async def head() -> tuple[int, str]:
        answer = await original_head()
        seen.append(time.perf_counter())
        return answer

    follower._head = head  # type: ignore[method-assign]
    original_publish = bus.publish
    done: list[float] = []

    async def publish(topic: str, message: Any) -> None:
        await original_publish(topic, message)
        done.append(time.perf_counter())

    bus.publish = publish  # type: ignore[method-assign]
    latencies: list[float] = []
    count = 0
    for i in range(LATENCY_BLOCKS):
        traffic(w3, vault, i)
        done.clear()
        processed = await follower.step()
        assert processed == 1, (processed, engine.errors)
        latencies.append((done[-1] - seen[-1]) * 1000)
        count += len(done)
    consumer.cancel()
    await rpc.close()
    await db.dispose()
    return {"latency_ms": summary(latencies), "findings": count}


async def latency_web3(node: Anvil, w3_sync: Web3, vault: Any, config: Path) -> dict[str, Any]:
    """The baseline: what a plain AsyncWeb3 loop does for the same 20 invariants + 20 event monitors."""
    loaded = load_config(config, environ={})
    w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
    contracts = {
        n: w3.eth.contract(address=Web3.to_checksum_address(r.address), abi=r.abi)
        for n, r in loaded.contracts.items()
    }
    calls = []
    for m in loaded.settings.monitors:
        if m.kind == "invariant":
            for text in m.calls.values():
                name, rest = text.split(".", 1)
                fn, arg = rest.rstrip(")").split("(")
                args = [contracts[arg].address] if arg else []
                calls.append((contracts[name], fn, args))
    events = [m.event for m in loaded.settings.monitors if m.kind == "event"]
    latencies: list[float] = []
    last = await w3.eth.block_number
    for i in range(LATENCY_BLOCKS):
        traffic(w3_sync, vault, i)
        head = await w3.eth.block_number
        t0 = time.perf_counter()
        for n in range(last + 1, head + 1):
            block = await w3.eth.get_block(n, full_transactions=True)
            receipts = await asyncio.gather(
                *(w3.eth.get_transaction_receipt(tx["hash"]) for tx in block["transactions"])
            )
            await asyncio.gather(
                *(getattr(c.functions, fn)(*a).call(block_identifier=n) for c, fn, a in calls)
            )
            vault_c = contracts["vault"]
            for event in events:
                for receipt in receipts:
                    getattr(vault_c.events, event)().process_receipt(receipt, errors=_discard())
        last = head
        latencies.append((time.perf_counter() - t0) * 1000)
    await w3.provider.disconnect()
    return {"latency_ms": summary(latencies)}


def _discard() -> Any:
    from web3.logs import DISCARD

    return DISCARD


async def raw_fetch(
    node: Anvil, first: int, last: int, reads: StateReads | None = None
) -> tuple[float, float, float]:
    """Blocks per second the node serves block + receipts, same batching and prefetch, no processing;
    this process's CPU microseconds per block meanwhile; and the wall milliseconds spent waiting on
    ``reads``. ``reads`` (the node-work baseline): the state-read batches the engine sent in a
    backfill of the same range (``record_state_reads``), each sent as the follower does, right after
    the fetch of its window and in that window's prefetch slot; their answers are not decoded."""
    rpc = RpcClient.from_urls(
        [node.url], timeout=60.0
    )  # as the backfill's (a loaded machine's anvil is slow)
    windows = [list(range(s, min(s + 25, last + 1))) for s in range(first, last + 1, 25)]
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(4)
    read_s = 0.0

    async def one(window: list[int]) -> None:
        nonlocal read_s
        async with sem:
            calls: list[tuple[str, tuple[Any, ...]]] = []
            for n in window:
                calls += [("eth_getBlockByNumber", (hex(n), True)), ("eth_getBlockReceipts", (hex(n),))]
            await rpc.batch(calls)
            if reads:
                for batch in reads.get(window[0], ()):
                    started = time.perf_counter()
                    answers = await rpc.batch(batch, strict=False)
                    read_s += time.perf_counter() - started
                    _answered(answers)

    cpu = time.process_time()
    await asyncio.gather(*(one(w) for w in windows))
    if reads:  # reads the engine made outside a window's prefetch (none seen): after the range
        for batch in reads.get(None, ()):
            started = time.perf_counter()
            answers = await rpc.batch(batch, strict=False)
            read_s += time.perf_counter() - started
            _answered(answers)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    await rpc.close()
    return (last - first + 1) / elapsed, cpu * 1e6 / (last - first + 1), read_s * 1000


def _answered(answers: list[Any]) -> None:
    """The node ran every replayed read (an error answer is cheaper work than the backfill's)."""
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, f"a replayed state read failed: {failed[0]}"


class _RecordingRpc:
    """The engine's view of the RPC client in ``record_state_reads``: every batch the engine sends
    (its state reads: the block reader's calls, code, balances) is kept with the first block of the
    window whose ``prepare`` sent it (None outside one), then sent on unchanged."""

    def __init__(self, rpc: RpcClient, seen: StateReads) -> None:
        self._rpc = rpc
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rpc, name)

    async def batch(self, calls: Sequence[Any], *, strict: bool = True) -> list[Any]:
        self._seen.setdefault(_WINDOW.get(), []).append(list(calls))
        return await self._rpc.batch(calls, strict=strict)


async def record_state_reads(
    node: Anvil, config: Path, folder: Path, first: int, last: int, name: str
) -> StateReads:
    """A backfill of ``first..last`` (one process, not timed) whose engine's RPC batches are recorded:
    the very state reads a backfill of that range sends, for the node-work baseline to replay."""
    follower, engine, rpc, (db, _bus) = await make_stack(node, config, folder / f"{name}-record.db")
    seen: StateReads = {}
    executor = engine.executor
    assert isinstance(executor, RpcBatchExecutor)
    executor.rpc = _RecordingRpc(executor.rpc, seen)  # type: ignore[assignment]
    prepare = engine.prepare

    async def recorded(blocks: Sequence[Any]) -> None:
        _WINDOW.set(blocks[0].number if blocks else None)  # this window's fetch task: its own context
        await prepare(blocks)

    engine.prepare = recorded  # type: ignore[method-assign]
    follower.start_block = first
    assert await follower.step() == last - first + 1
    await engine.close()
    await rpc.close()
    await db.dispose()
    return seen


async def backfill(
    node: Anvil,
    config: Path,
    folder: Path,
    first: int,
    last: int,
    name: str = "backfill",
    *,
    worker: bool = False,
    published: list[str] | None = None,
) -> tuple[float, dict[str, float]]:
    """Blocks per second of a follower + engine catching up on ``first..last``, and what the engine
    did about state: blocks read at their own height, quiet blocks that took their parent's reads.
    ``worker``: with the backfill worker process (``detect/offload.py``). ``published``: gets the
    findings' fingerprints, in publication order (not the findings: 10,000 of them kept alive made
    the collector's full collections cost 90-190 ms of a ~0.9 s backfill, a cost of this measurement
    that a service, which hands findings on, does not have)."""
    follower, engine, rpc, (db, bus) = await make_stack(node, config, folder / f"{name}.db", worker=worker)
    if published is not None:
        original = bus.publish

        async def publish(topic: str, message: Any) -> None:
            if topic == Topics.FINDINGS:
                published.append(message.fingerprint)
            await original(topic, message)

        bus.publish = publish
    follower.start_block = first
    requests = rpc.requests
    worker_cpu = await engine.worker.cpu_seconds() if engine.worker is not None else 0.0
    cpu = time.process_time()
    t0 = time.perf_counter()
    assert await follower.step() == last - first + 1  # as `watch` does after downtime: head, then the gap
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    if engine.worker is not None:
        worker_cpu = await engine.worker.cpu_seconds() - worker_cpu
    stats: dict[str, float] = {
        "round_trips": rpc.requests - requests,
        "carried_reads": engine.carried_reads,
        "state_reads": engine.state_reads,
        "state_read_ms": round(engine.state_read_ms, 1),
        "blocks_beyond_state_horizon": engine.skipped_reads,
        "cpu_us_per_block": round(cpu * 1e6 / (last - first + 1), 1),
        "worker_cpu_us_per_block": round(worker_cpu * 1e6 / (last - first + 1), 1),
    }
    if engine.worker is not None:
        stats["worker_windows"] = engine.worker.windows
        stats["worker_restarts"] = engine.worker.restarts
    await engine.close()
    await rpc.close()
    await db.dispose()
    return (last - first + 1) / elapsed, stats


async def follow_memory(node: Anvil, config: Path, folder: Path, first: int) -> tuple[list[float], int]:
    """Follow MEMORY_BLOCKS new blocks as they are mined (anvil mines slowly past a few thousand
    blocks, so mining and following overlap); RSS sampled every 1,000 blocks."""
    follower, _engine, rpc, (db, _bus) = await make_stack(node, config, folder / "memory.db")
    follower.start_block = first
    memory: list[float] = []
    done = 0
    while done < MEMORY_BLOCKS:
        await asyncio.to_thread(node.mine, 250)
        try:
            done += await follower.step()
        except RpcError as exc:  # anvil slows down past a few thousand blocks; retry as `run()` does
            print(f"  (retrying after: {exc})", flush=True)
        if done // 1000 > len(memory) - 1 or not memory:
            memory.append(rss_mb())
    await rpc.close()
    await db.dispose()
    return memory, done


async def reads(node: Anvil, config_path: Path) -> dict[str, Any]:
    """The invariants' reads, two ways: a JSON-RPC batch of eth_calls vs one Multicall3 eth_call."""
    config = load_config(config_path, environ={})
    contracts = contracts_of(config)
    users = [a for a in Web3(Web3.HTTPProvider(node.url)).eth.accounts]
    six = [
        "vault.totalAssets()",
        "vault.totalLiabilities()",
        "usd.balanceOf(vault)",
        "vault.maxLeverage()",
        "usd.totalSupply()",
        "vault.paused()",
    ]
    many = six + [f"vault.deposits({u})" for u in users] + [f"usd.balanceOf({u})" for u in users]
    many = (many * 4)[:60]
    rpc = RpcClient.from_urls([node.url])
    batch = RpcBatchExecutor(rpc)
    multi = MulticallExecutor(rpc, contracts["multicall"][0])
    out: dict[str, Any] = {}
    for label, texts in (("6_calls", six), ("60_calls", many)):
        calls = [parse_call(t, contracts, "bench") for t in texts]
        assert await batch.execute(calls, "latest") == await multi.execute(calls, "latest")
        for name, executor in (("jsonrpc_batch", batch), ("multicall3", multi)):
            times = []
            for _ in range(100):
                t0 = time.perf_counter()
                await executor.execute(calls, "latest")
                times.append((time.perf_counter() - t0) * 1000)
            out[f"{label}_{name}_ms"] = summary(times)
    await rpc.close()
    return out


async def backfill_rounds(
    node: Anvil,
    config: Path,
    events_only: Path,
    folder: Path,
    first: int,
    last: int,
    name: str,
    *,
    pinned: bool = False,
) -> dict[str, Any]:
    """Rounds of raw fetch, node work (raw fetch + the engine's state reads), full backfill,
    events-only backfill of ``first..last``, back to back: each backfill is compared with the raw
    fetch of its own round (a shared machine drifts), and the full ones also with its node work.

    The node-work baseline separates what the node must do for a backfill from this process's own
    overhead: the raw fetch asks for blocks and receipts only, but the invariants read the state of
    the blocks within the state horizon (historical ``eth_call``, which anvil runs one at a time).
    Those reads are recorded from the engine in a first, untimed backfill (``record_state_reads``),
    so the baseline sends the very same calls, batches and blocks, and decodes nothing.

    ``pinned``: every round in the own-cores layout (``own_cores``), the recording too."""
    layout = own_cores(node) if pinned else contextlib.nullcontext()
    name = f"{name}-own-cores" if pinned else name
    with layout:
        return await _backfill_rounds(node, config, events_only, folder, first, last, name)


async def _backfill_rounds(
    node: Anvil, config: Path, events_only: Path, folder: Path, first: int, last: int, name: str
) -> dict[str, Any]:
    state_reads = await record_state_reads(node, config, folder, first, last, name)
    read_batches = [b for batches in state_reads.values() for b in batches]
    recorded = {
        "batches": len(read_batches),
        "calls": sum(len(b) for b in read_batches),
        "outside_a_window": len(state_reads.get(None, [])),
    }
    print(f"backfill {name}: the engine's state reads, recorded: {recorded}", flush=True)
    rounds: list[dict[str, float]] = []
    stats: dict[str, float] = {}
    worker_stats: dict[str, float] = {}
    same = True
    for r in range(BACKFILL_ROUNDS):
        here: list[str] = []
        there: list[str] = []
        raw, raw_cpu, _ = await raw_fetch(node, first, last)
        node_work, node_work_cpu, node_work_read_ms = await raw_fetch(node, first, last, state_reads)
        rate, stats = await backfill(node, config, folder, first, last, f"{name}-full-{r}", published=here)
        rate_w, worker_stats = await backfill(
            node, config, folder, first, last, f"{name}-worker-{r}", worker=True, published=there
        )
        rate_events, _ = await backfill(node, events_only, folder, first, last, f"{name}-events-{r}")
        rate_events_w, _ = await backfill(
            node, events_only, folder, first, last, f"{name}-events-worker-{r}", worker=True
        )
        same = same and here == there
        rounds.append(
            {
                "raw": raw,
                "node_work": node_work,
                "full": rate,
                "full_worker": rate_w,
                "events": rate_events,
                "events_worker": rate_events_w,
                "load1": os.getloadavg()[0],
                "raw_cpu_us": raw_cpu,
                "node_work_cpu_us": node_work_cpu,
                "node_work_read_ms": node_work_read_ms,
                "full_read_ms": stats["state_read_ms"],
                "full_worker_read_ms": worker_stats["state_read_ms"],
                "full_cpu_us": stats["cpu_us_per_block"],
                "full_worker_cpu_us": worker_stats["cpu_us_per_block"],
                "worker_cpu_us": worker_stats["worker_cpu_us_per_block"],
            }
        )
        print(
            f"backfill {name} round {r + 1} (load {os.getloadavg()[0]:.1f}): raw {raw:.0f}/s, "
            f"node work {node_work:.0f}/s (state reads {node_work_read_ms:.0f} ms); "
            f"full {rate:.0f}/s = {rate / raw:.0%} of raw, {rate / node_work:.0%} of node work "
            f"(state reads {stats['state_read_ms']:.0f} ms), with worker {rate_w:.0f}/s = "
            f"{rate_w / raw:.0%} / {rate_w / node_work:.0%}; "
            f"events only {rate_events:.0f}/s = {rate_events / raw:.0%}, "
            f"with worker {rate_events_w:.0f}/s = {rate_events_w / raw:.0%}; CPU us/block of this "
            f"process: raw {raw_cpu:.0f}, full {stats['cpu_us_per_block']:.0f}, with worker "
            f"{worker_stats['cpu_us_per_block']:.0f} (+ {worker_stats['worker_cpu_us_per_block']:.0f} "
            "in the worker)",
            flush=True,
        )

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in rounds), 1)

    def ratio(key: str, base: str = "raw") -> float:
        return round(statistics.median(r[key] / r[base] for r in rounds), 3)

    return {
        "blocks": last - first + 1,
        "raw_fetch_blocks_per_s": median("raw"),
        "blocks_per_s": median("full"),
        "ratio": ratio("full"),
        "worker_blocks_per_s": median("full_worker"),
        "worker_ratio": ratio("full_worker"),
        "node_work_blocks_per_s": median("node_work"),
        "node_work_ratio_vs_raw": ratio("node_work"),
        "ratio_vs_node_work": ratio("full", "node_work"),
        "worker_ratio_vs_node_work": ratio("full_worker", "node_work"),
        "state_read_ms": {k: median(k) for k in ("node_work_read_ms", "full_read_ms", "full_worker_read_ms")},
        "recorded_state_reads": recorded,
        "events_only_blocks_per_s": median("events"),
        "events_only_ratio": ratio("events"),
        "events_only_worker_blocks_per_s": median("events_worker"),
        "events_only_worker_ratio": ratio("events_worker"),
        "worker_findings_identical": same,
        "cpu_us_per_block": {
            k: median(k)
            for k in ("raw_cpu_us", "node_work_cpu_us", "full_cpu_us", "full_worker_cpu_us", "worker_cpu_us")
        },
        "load_average_1min": [round(r["load1"], 1) for r in rounds],
        "engine": stats,
        "engine_with_worker": worker_stats,
        "rounds": [{k: round(v, 1) for k, v in r.items()} for r in rounds],
    }


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, Anvil(NODE) as node:
        folder = Path(tmp)
        w3, token, vault, config = setup(node, folder)
        read_times = await reads(node, config)
        print(f"reads: {read_times}", flush=True)
        ours = await latency_breakglass(node, w3, vault, config, folder)
        base = await latency_web3(node, w3, vault, config)
        print(f"latency: breakglass {ours['latency_ms']}, web3.py {base['latency_ms']}", flush=True)
        # the same blocks with the 20 event monitors only: what the invariants' reads add
        events_only = folder / "events.yaml"
        head, monitors = config.read_text(encoding="utf-8").split("monitors:\n")
        events_only.write_text(
            head + "monitors:\n" + monitors[monitors.index("  - id: ev-0") :], encoding="utf-8"
        )
        # busy blocks first (a backfill runs to the head, so each range is measured while at the head)
        first = w3.eth.block_number + 1
        busy_traffic(node, w3, token, vault, BUSY_BLOCKS)
        last = w3.eth.block_number
        busy = await backfill_rounds(node, config, events_only, folder, first, last, "busy")
        busy_own = await _own_cores_rounds(node, config, events_only, folder, first, last, "busy")
        first = w3.eth.block_number + 1
        quiet_traffic(node, w3, vault, BACKFILL_BLOCKS)  # a block with traffic, six quiet ones
        last = w3.eth.block_number
        quiet = await backfill_rounds(node, config, events_only, folder, first, last, "quiet")
        quiet_own = await _own_cores_rounds(node, config, events_only, folder, first, last, "quiet")
        skip_memory = os.environ.get("BREAKGLASS_BENCH_SKIP_MEMORY") == "1"  # for a quick backfill look
        memory, mem_blocks = (
            ([float("nan")], 0) if skip_memory else await follow_memory(node, config, folder, last + 1)
        )
    return {
        "setup": {
            "invariants": 20,
            "event_monitors": 20,
            "node": "anvil automine",
            "python": sys.version.split()[0],
        },
        "latency_breakglass_ms": ours["latency_ms"],
        "latency_web3py_baseline_ms": base["latency_ms"],
        "findings_in_latency_run": ours["findings"],
        "reads_ms": read_times,
        "node": NODE.extra_args,
        "backfill_quiet": quiet,
        "backfill_quiet_own_cores": quiet_own,
        "backfill_busy": {**busy, "transactions_per_block": BUSY_TXS},
        "backfill_busy_own_cores": busy_own,
        "memory_blocks": mem_blocks,
        "memory_rss_mb_per_1000_blocks": [round(m, 1) for m in memory],
        "memory_growth_mb": round(memory[-1] - memory[0], 1),
    }


async def run_quiet_only() -> dict[str, Any]:
    """The near-empty backfill alone (``BREAKGLASS_BENCH_QUIET_ONLY=1``): the backfill worker's
    figures in a few minutes on a loaded machine, where the whole benchmark takes long."""
    with tempfile.TemporaryDirectory() as tmp, Anvil(NODE) as node:
        folder = Path(tmp)
        w3, _token, vault, config = setup(node, folder)
        events_only = folder / "events.yaml"
        head, monitors = config.read_text(encoding="utf-8").split("monitors:\n")
        events_only.write_text(
            head + "monitors:\n" + monitors[monitors.index("  - id: ev-0") :], encoding="utf-8"
        )
        first = w3.eth.block_number + 1
        quiet_traffic(node, w3, vault, BACKFILL_BLOCKS)  # a block with traffic, six quiet ones
        last = w3.eth.block_number
        return {
            "node": NODE.extra_args,
            "backfill_quiet": await backfill_rounds(node, config, events_only, folder, first, last, "quiet"),
            "backfill_quiet_own_cores": await _own_cores_rounds(
                node, config, events_only, folder, first, last, "quiet"
            ),
        }


async def _own_cores_rounds(
    node: Anvil, config: Path, events_only: Path, folder: Path, first: int, last: int, name: str
) -> dict[str, Any] | None:
    """The same rounds in the own-cores layout; None on a machine with a single core."""
    if not own_cores_available():
        print(f"backfill {name}: one core only, no own-cores layout", flush=True)
        return None
    return await backfill_rounds(node, config, events_only, folder, first, last, name, pinned=True)


def main() -> dict[str, Any]:
    if os.environ.get("BREAKGLASS_BENCH_QUIET_ONLY") == "1":
        quiet = asyncio.run(run_quiet_only())
        path = RESULTS.with_name("detection-quiet.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(quiet, indent=2), encoding="utf-8")
        for layout, key in (("shared cores", "backfill_quiet"), ("own cores", "backfill_quiet_own_cores")):
            b = quiet[key]
            if b is None:
                continue
            print(json.dumps({k: v for k, v in b.items() if k != "rounds"}, indent=1))
            print(
                f"near-empty backfill, {layout}, one process: {b['ratio']:.0%} of the raw fetch "
                f"({b['raw_fetch_blocks_per_s']} blocks/s; blocks + receipts, the issue's figure), "
                f"{b['ratio_vs_node_work']:.0%} of node work (the raw fetch + the engine's state "
                f"reads); with the worker {b['worker_ratio']:.0%} / {b['worker_ratio_vs_node_work']:.0%}"
            )
        print(f"wrote {path}")
        return quiet
    results = asyncio.run(run())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    ours, base = results["latency_breakglass_ms"], results["latency_web3py_baseline_ms"]
    print(f"latency block seen -> findings (20 invariants + 20 event monitors, {ours['n']} blocks):")
    print(f"  breakglass      p50 {ours['p50']:7.2f} ms   p99 {ours['p99']:7.2f} ms   (goal p99 <= 50 ms)")
    print(f"  web3.py loop    p50 {base['p50']:7.2f} ms   p99 {base['p99']:7.2f} ms   (baseline, same run)")
    for key, what in (
        ("busy", f"{BUSY_TXS} transactions a block, shared cores"),
        ("busy_own_cores", f"{BUSY_TXS} transactions a block, own cores"),
        ("quiet", "a deposit then six empty blocks, shared cores"),
        ("quiet_own_cores", "a deposit then six empty blocks, own cores"),
    ):
        b = results[f"backfill_{key}"]
        if b is None:
            continue
        print(
            f"backfill {b['blocks']} blocks, {what} (median of {BACKFILL_ROUNDS} rounds, load "
            f"{b['load_average_1min']}): raw fetch {b['raw_fetch_blocks_per_s']} blocks/s\n"
            f"  in one process     {b['blocks_per_s']} blocks/s = {b['ratio']:.0%} (goal >= 80%); 20 "
            f"event monitors only: {b['events_only_blocks_per_s']} blocks/s = {b['events_only_ratio']:.0%}\n"
            f"  with the worker    {b['worker_blocks_per_s']} blocks/s = {b['worker_ratio']:.0%}; "
            f"20 event monitors only: {b['events_only_worker_blocks_per_s']} blocks/s = "
            f"{b['events_only_worker_ratio']:.0%}; same findings in the same order: "
            f"{b['worker_findings_identical']}\n"
            f"  node work (raw fetch + the engine's {b['recorded_state_reads']['calls']} state-read "
            f"calls): {b['node_work_blocks_per_s']} blocks/s = {b['node_work_ratio_vs_raw']:.0%} of raw; "
            f"backfill vs node work: one process {b['ratio_vs_node_work']:.0%}, with the worker "
            f"{b['worker_ratio_vs_node_work']:.0%}; state-read wall ms (medians): {b['state_read_ms']}"
        )
        print(f"  engine: {b['engine']}; with the worker: {b['engine_with_worker']}")
        print(f"  CPU us per block (medians): {b['cpu_us_per_block']}")
    print(
        f"memory over {results['memory_blocks']} blocks (RSS MB per 1,000): "
        f"{results['memory_rss_mb_per_1000_blocks']}"
        f" growth {results['memory_growth_mb']} MB"
    )
    for key, value in results["reads_ms"].items():
        print(f"reads {key:28} p50 {value['p50']:6.2f} ms  p99 {value['p99']:6.2f} ms")
    print(f"wrote {RESULTS}")
    return results


if __name__ == "__main__":
    main()
