"""Containment benchmark: finding -> signed pause submitted, and whether the pause makes the next block.

    python -m benchmarks.containment          # prints figures, writes benchmarks/results/containment.json

On an interval-mining anvil (1 s blocks) with the guarded mock venue (contracts/mocks/MockGuardedVenue.sol):
1. latency, ``Responder.handle(finding)`` called -> ``eth_sendRawTransaction`` answered, over many findings
   (each pauses a different market, so each is a new transaction). The node's own time (every JSON-RPC
   round trip: the simulation and the send) is measured separately and subtracted: what remains is
   breakglass (matching, templating, policy, ledger claim committed to SQLite, fees, nonce, signing).
   Baseline in the same run: a plain web3.py script doing it the usual way (nonce, chain id, base fee,
   tip, estimate, sign, send: six round trips per finding);
2. inclusion: findings arriving at random moments of the block interval; a run counts if its pause is
   in the first block mined after the send returned;
3. front-running: an attacker's trade is pending in the mempool; the finding carries its fees, the
   responder outbids it, and we count runs where the pause is ordered first and the trade reverts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from breakglass.bus import InProcessBus
from breakglass.chain.rpc import HttpTransport, RpcClient
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.domain import Finding, Severity
from breakglass.logs import Redactor
from breakglass.respond import Responder, build_responder
from breakglass.respond.rpc import RESPONDER_ROUNDS
from breakglass.store.migrate import upgrade_async

RESULTS = Path(__file__).parent / "results" / "containment.json"
LATENCY_RUNS = 300
INCLUSION_RUNS = 100
FRONTRUN_RUNS = 20
BLOCK_TIME = 1.0
KEY_ENV = "BENCH_GUARDIAN_KEY"

CONFIG = """
deployment: manifest.json
store: {{url: "sqlite:///{db}"}}
monitors: [{{id: exploit, kind: event, contract: venue, event: Paused}}]
responder: {{guardian: {{env: {env}}}, fees: {{priority_fee_gwei: 1, outbid_margin: 0.25}}}}
policy:
  allow: [{{contract: venue, function: pauseMarket, args: {{marketId: any}}}}]
  max_fee_gwei: 1000
  rate_limit: {{count: 100000, per_seconds: 1}}
playbooks:
  - id: contain
    match: {{monitors: [exploit]}}
    actions:
      - {{kind: call, id: pause-market, contract: venue, function: pauseMarket, args: ["{{labels.market}}"]}}
"""


class TimingRpc(RpcClient):
    """The client production uses (``respond.connect``: ``chain.rpc``'s endpoints with failover),
    timing every round trip: the node's own time, to subtract."""

    def __init__(self, url: str) -> None:
        super().__init__([HttpTransport(url)], max_rounds=RESPONDER_ROUNDS)
        self.node_s = 0.0
        self.sent_at = 0.0

    async def call(self, method: str, *params: Any) -> Any:
        started = time.perf_counter()
        try:
            return await super().call(method, *params)
        finally:
            ended = time.perf_counter()
            self.node_s += ended - started
            if method == "eth_sendRawTransaction":
                self.sent_at = ended


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(pct(values, 50), 3),
        "p99": round(pct(values, 99), 3),
        "mean": round(statistics.fmean(values), 3),
        "max": round(max(values), 3),
    }


def finding(market: int, **evidence: Any) -> Finding:
    return Finding(
        monitor_id="exploit",
        severity=Severity.CRITICAL,
        chain_id=31337,
        block_number=market,
        title="exploit",
        labels={"market": str(market)},
        evidence=evidence,
    )


async def responder_for(node: Anvil, folder: Path, key: str) -> tuple[Responder, TimingRpc]:
    (folder / "breakglass.yaml").write_text(CONFIG.format(db=folder / "bg.db", env=KEY_ENV), encoding="utf-8")
    loaded = load_config(folder / "breakglass.yaml")
    await upgrade_async(loaded.settings.store.url)
    rpc = TimingRpc(node.url)
    responder = build_responder(loaded, InProcessBus(), Redactor(), rpc=rpc, environ={KEY_ENV: key})
    await responder.start()
    return responder, rpc


async def measure_ours(responder: Responder, rpc: TimingRpc, first_market: int) -> dict[str, list[float]]:
    total, node, ours = [], [], []
    for i in range(LATENCY_RUNS):
        if i % 20 == 0:
            await responder.relayer.refresh()  # type: ignore[union-attr]  # per block, off the hot path
        rpc.node_s = 0.0
        started = time.perf_counter()
        await responder.handle(finding(first_market + i))
        elapsed = (rpc.sent_at - started) * 1000
        node_ms = rpc.node_s * 1000
        total.append(elapsed)
        node.append(node_ms)
        ours.append(elapsed - node_ms)
    return {"total": total, "node": node, "ours": ours}


def measure_baseline(w3: Web3, venue: Any, key: str, first_market: int) -> dict[str, list[float]]:
    """The usual script: fetch everything, estimate, sign, send; every round trip timed."""
    account = Account.from_key(key)
    total, node, ours = [], [], []
    for i in range(LATENCY_RUNS):
        node_s = 0.0

        def timed(fn: Any, *args: Any) -> Any:
            nonlocal node_s
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                node_s += time.perf_counter() - t

        started = time.perf_counter()
        nonce = timed(w3.eth.get_transaction_count, account.address, "pending")
        chain_id = timed(lambda: w3.eth.chain_id)
        base = timed(w3.eth.get_block, "latest")["baseFeePerGas"]
        tip = timed(lambda: w3.eth.max_priority_fee)
        data = venue.functions.pauseMarket(first_market + i)._encode_transaction_data()
        tx = {"from": account.address, "to": venue.address, "data": data, "value": 0}
        gas = timed(w3.eth.estimate_gas, tx)
        signed = account.sign_transaction(
            {
                **tx,
                "type": 2,
                "nonce": nonce,
                "chainId": chain_id,
                "gas": gas,
                "maxFeePerGas": 2 * base + tip,
                "maxPriorityFeePerGas": tip,
            }
        )
        timed(w3.eth.send_raw_transaction, signed.raw_transaction)
        elapsed = (time.perf_counter() - started) * 1000
        total.append(elapsed)
        node.append(node_s * 1000)
        ours.append(elapsed - node_s * 1000)
    return {"total": total, "node": node, "ours": ours}


async def inclusion(responder: Responder, rpc: TimingRpc, w3: Web3, first_market: int) -> dict[str, Any]:
    """Findings at random moments; does each pause land in the first block after its send?"""
    rng = random.Random(5)
    next_block, later, missing = 0, 0, 0
    for i in range(INCLUSION_RUNS):
        await asyncio.sleep(rng.uniform(0.05, 0.6))  # the finding's arrival is random within the interval
        await responder.relayer.refresh()  # type: ignore[union-attr]
        [event] = await responder.handle(finding(first_market + i))
        head = w3.eth.block_number  # right after the send returned
        receipt = w3.eth.wait_for_transaction_receipt(event.tx_hash, timeout=30, poll_latency=0.05)
        if receipt["status"] != 1:
            missing += 1
        elif receipt["blockNumber"] <= head + 1:
            next_block += 1
        else:
            later += 1
    return {
        "runs": INCLUSION_RUNS,
        "next_block": next_block,
        "later": later,
        "failed": missing,
        "next_block_rate": next_block / INCLUSION_RUNS,
    }


async def front_run(responder: Responder, w3: Web3, venue: Any, first_market: int) -> dict[str, Any]:
    """An attacker's trade is pending; the pause outbids it and must be ordered first in the same block."""
    attacker = w3.eth.accounts[3]
    first, trade_reverted = 0, 0
    for i in range(FRONTRUN_RUNS):
        market = first_market + i
        block = w3.eth.get_block("latest")
        tip = w3.to_wei(random.Random(i).uniform(2, 50), "gwei")
        trade = venue.functions.trade(market).transact(
            {
                "from": attacker,
                "gas": 100_000,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": 2 * block["baseFeePerGas"] + tip,
            }
        )
        pending = w3.eth.get_transaction(trade)
        await responder.relayer.refresh()  # type: ignore[union-attr]
        fees = {
            "max_fee_per_gas": pending["maxFeePerGas"],
            "max_priority_fee_per_gas": pending["maxPriorityFeePerGas"],
        }
        [event] = await responder.handle(finding(market, pending_fees=fees))
        ours = w3.eth.wait_for_transaction_receipt(event.tx_hash, timeout=30, poll_latency=0.05)
        theirs = w3.eth.wait_for_transaction_receipt(trade, timeout=30, poll_latency=0.05)
        if (ours["blockNumber"], ours["transactionIndex"]) < (
            theirs["blockNumber"],
            theirs["transactionIndex"],
        ):
            first += 1
        trade_reverted += theirs["status"] == 0
    return {"runs": FRONTRUN_RUNS, "pause_first": first, "attack_reverted": trade_reverted}


async def run() -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    build = compile_contracts(["contracts/mocks"])
    with (
        Anvil(AnvilOptions(mode=BlockMode.INTERVAL, block_time=BLOCK_TIME)) as node,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        w3 = Web3(Web3.HTTPProvider(node.url))
        keys = [Account.create() for _ in range(2)]
        for account in keys:
            node.rpc("anvil_setBalance", account.address, hex(10**22))
        deployer = Deployer(w3, build)
        venue = deployer.deploy("venue", "MockGuardedVenue", w3.eth.accounts[0], keys[0].address, 3600)
        baseline_venue = deployer.deploy(
            "baseline", "MockGuardedVenue", w3.eth.accounts[0], keys[1].address, 3600
        )
        deployer.manifest(node.url).write(folder / "manifest.json")
        responder, rpc = await responder_for(node, folder, "0x" + bytes(keys[0].key).hex())
        try:
            await measure_ours(responder, rpc, 100_000)  # warm-up: connections, caches, SQLite pages
            ours = await measure_ours(responder, rpc, 0)
            baseline = measure_baseline(w3, baseline_venue, "0x" + bytes(keys[1].key).hex(), 0)
            included = await inclusion(responder, rpc, w3, 10_000)
            frontrun = await front_run(responder, w3, venue, 20_000)
        finally:
            await responder.close()
    return {
        "setup": {
            "block_time_s": BLOCK_TIME,
            "latency_runs": LATENCY_RUNS,
            "node": "anvil (interval mining)",
            "cpus": os.cpu_count(),
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "latency_ms": {
            "breakglass": {k: summary(v) for k, v in ours.items()},
            "baseline_web3py": {k: summary(v) for k, v in baseline.items()},
        },
        "inclusion": included,
        "front_run": frontrun,
        "targets": {"ours_p99_ms_max": 10.0, "next_block_rate_min": 0.99},
    }


def main() -> None:
    result = asyncio.run(run())
    lat = result["latency_ms"]
    setup = result["setup"]
    print(
        f"machine: {setup['cpus']} CPUs, 1-min load average {setup['load_average_1m'][0]} before, "
        f"{setup['load_average_1m'][1]} after (other processes compete for the CPUs: p99 follows the load)"
    )
    print(f"finding -> signed pause submitted ({LATENCY_RUNS} findings, ms):")
    for who in ("breakglass", "baseline_web3py"):
        t, n, o = lat[who]["total"], lat[who]["node"], lat[who]["ours"]
        print(
            f"  {who:16} total p50 {t['p50']:7.3f} p99 {t['p99']:7.3f} | node p50 {n['p50']:7.3f} "
            f"p99 {n['p99']:7.3f} | excluding node p50 {o['p50']:7.3f} p99 {o['p99']:7.3f}"
        )
    inc = result["inclusion"]
    print(
        f"pause in the next block: {inc['next_block']}/{inc['runs']} ({inc['next_block_rate']:.1%}), "
        f"later {inc['later']}, failed {inc['failed']} (block time {BLOCK_TIME:g} s)"
    )
    fr = result["front_run"]
    print(
        f"front-running a pending attack: pause ordered first {fr['pause_first']}/{fr['runs']}, "
        f"attack reverted {fr['attack_reverted']}/{fr['runs']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
