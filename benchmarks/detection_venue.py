"""Detection quality on the reference venue with examples/venue.yaml: every scenario, and benign traffic.

    python -m benchmarks.detection_venue [--blocks 2000] [--scenario NAME]

For each exploit scenario: a fresh anvil, the venue with the scenario's switch on, the engine following
from just after deployment; reports the findings by severity and whether a high/critical one came at
or before the first strike transaction's block. Then the safe venue under the benign generator for
``--blocks`` blocks: findings by severity (the goal is none at high or critical). Writes
``benchmarks/results/detection_venue.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from web3 import Web3

from breakglass.bus import Topics
from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.config import load_config
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build, compile_contracts
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import Finding, Severity
from breakglass.store.db import Base, make_engine, make_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "venue.yaml"
RESULTS = Path(__file__).parent / "results" / "detection_venue.json"


class Collect:
    """A bus that keeps findings in a list."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    async def publish(self, topic: str, message: Any) -> None:
        if topic == Topics.FINDINGS:
            self.findings.append(message)

    def subscribe(self, topic: str, durable: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def watcher(node: Anvil, deployer: Deployer, folder: Path) -> tuple[Follower, Collect, RpcClient]:
    """The engine of examples/venue.yaml on this deployment, following from the next block."""
    deployer.manifest(node.url).write(folder / "manifest.json")
    text = EXAMPLE.read_text(encoding="utf-8").replace("../.breakglass/devnet/manifest.json", "manifest.json")
    (folder / "venue.yaml").write_text(text, encoding="utf-8")
    config = load_config(folder / "venue.yaml", environ={})
    rpc = RpcClient.from_urls([node.url])
    built = build_detectors(config, chain_id=31337)
    bus = Collect()
    engine = DetectionEngine(
        built.detectors,
        chain_id=31337,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        bus=bus,
        want_code=built.want_code,
    )
    db = make_engine(f"sqlite:///{folder / 'store.db'}")
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    follower = Follower(
        rpc,
        CheckpointStore(make_sessionmaker(db)),
        engine,
        chain_id=31337,
        start_block=deployer.w3.eth.block_number + 1,
    )
    return follower, bus, rpc


def by_severity(findings: list[Finding]) -> dict[str, int]:
    return dict(Counter(str(f.severity) for f in findings))


async def scenario(name: str, build: Build) -> dict[str, Any]:
    from breakglass.drills.scenarios import SCENARIOS, play

    chosen = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp, Anvil(AnvilOptions()) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches(*chosen.switches))
        follower, bus, rpc = await watcher(node, deployer, Path(tmp))
        result = await asyncio.to_thread(play, chosen, venue, build)
        await follower.step()
        await rpc.close()
    first_strike = result.to_json().get("first_strike_block")
    serious = [f for f in bus.findings if f.severity >= Severity.HIGH]
    first_serious = min((f.block_number for f in serious), default=None)
    return {
        "scenario": name,
        "loss_fraction": round(float(result.to_json().get("fraction", 0.0)), 3),
        "findings": by_severity(bus.findings),
        "high_or_critical_monitors": sorted({f.monitor_id for f in serious}),
        "first_high_block": first_serious,
        "first_strike_block": first_strike,
        "detected_before_strike": first_serious is not None
        and first_strike is not None
        and first_serious < first_strike,
        "detected": bool(serious),
    }


def benign(blocks: int, build: Build) -> dict[str, Any]:
    from breakglass.drills.benign import BenignConfig, BenignTraffic

    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp, Anvil(AnvilOptions()) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions())
        traffic = BenignTraffic(venue, BenignConfig())
        traffic.fund()
        follower, bus, rpc = loop.run_until_complete(watcher(node, deployer, Path(tmp)))
        started = time.monotonic()

        def every_block(number: int) -> None:
            if number % 25 == 0:
                loop.run_until_complete(follower.step())

        report = traffic.run(blocks, on_block=every_block)
        loop.run_until_complete(follower.step())
        loop.run_until_complete(rpc.close())
    loop.close()
    serious = [f for f in bus.findings if f.severity >= Severity.HIGH]
    return {
        "blocks": blocks,
        "transactions": getattr(report, "transactions", None),
        "reverts": len(getattr(report, "reverts", []) or []),
        "findings": by_severity(bus.findings),
        "by_monitor": dict(Counter(f.monitor_id for f in bus.findings)),
        "high_or_critical": [
            {"monitor": f.monitor_id, "block": f.block_number, "title": f.title} for f in serious
        ][:50],
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=2000, help="benign blocks (0: skip)")
    parser.add_argument("--scenario", default="all", help="a scenario name, all, or none")
    args = parser.parse_args(argv)
    from breakglass.drills.scenarios import SCENARIOS

    build = compile_contracts()
    names = {"all": list(SCENARIOS), "none": []}.get(args.scenario, [args.scenario])
    results: dict[str, Any] = {"config": str(EXAMPLE.relative_to(ROOT)), "scenarios": []}
    if not names and RESULTS.is_file():  # benign only: keep the scenarios of the last run
        results = json.loads(RESULTS.read_text(encoding="utf-8"))
    for name in names:
        row = asyncio.run(scenario(name, build))
        results["scenarios"].append(row)
        print(
            f"{name:22} detected={row['detected']!s:5} before-strike={row['detected_before_strike']!s:5} "
            f"loss={row['loss_fraction']:.0%} findings={row['findings']} "
            f"high+={row['high_or_critical_monitors']}",
            flush=True,
        )
    if args.blocks:
        results["benign"] = benign(args.blocks, build)
        b = results["benign"]
        print(
            f"benign {b['blocks']} blocks, {b['transactions']} txs: findings={b['findings']} "
            f"by monitor={b['by_monitor']}",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"wrote {RESULTS}")
    return results


if __name__ == "__main__":
    main()
