"""Attack-contract simulation's cost per deployment on the reference venue with examples/venue.yaml.

    python -m benchmarks.attack_simulation [--rounds 20]

One anvil, the venue with the repeated-drain switch (spot-valued LP vault), the engine's invariants
primed on the head. Each round deploys, each in its own block and from a fresh account, an honest
zap, an honest flash-loan user, a token, a two-step attack and a factory that then creates an attack
contract, and runs the simulation on each block as the follower would hand it over. Reports wall
time per probe run (p50/p99, ms), simulations per run, and what was proven; writes
``benchmarks/results/attack_simulation.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from breakglass.chain.follower import fetch_blocks
from breakglass.config import load_config
from breakglass.detect.service import build_watcher
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.simulate import build_attack_simulation

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "venue.yaml"
RESULTS = Path(__file__).parent / "results" / "attack_simulation.json"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def run(rounds: int) -> dict[str, Any]:
    build = compile_contracts()
    folder = Path(tempfile.mkdtemp(prefix="bg-attack-bench-"))
    with Anvil(AnvilOptions()) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = deploy_venue(deployer, VenueOptions.with_switches("spot_valuation"))
        deployer.manifest(node.url).write(folder / "manifest.json")
        text = EXAMPLE.read_text(encoding="utf-8").replace(
            "../.breakglass/devnet/manifest.json", "manifest.json"
        )
        text += f"\nstore:\n  url: sqlite:///{folder / 'store.db'}\n"
        (folder / "venue.yaml").write_text(text, encoding="utf-8")
        config = load_config(folder / "venue.yaml", environ={})
        watcher = build_watcher(config, None)
        service = build_attack_simulation(config, watcher, None)
        await service.start()
        simulator = service.simulator
        [head] = await fetch_blocks(watcher.rpc, [w3.eth.block_number])
        await watcher.engine.evaluate(head)  # the invariants' prev, as on a running follower
        drain = (
            venue.usd.address,
            venue.vault.address,
            venue["amm_thin"].address,
            venue["thin_token"].address,
            venue["flash_lender"].address,
        )
        kinds: dict[str, tuple[str, tuple[Any, ...]]] = {
            "honest zap": ("VaultZap", (venue.usd.address, venue.vault.address)),
            "honest flash-loan user": ("FlashRepay", (venue.usd.address, venue["flash_lender"].address)),
            "token": ("MockERC20", ("Bench", "B", 18)),
            "two-step attack": ("TwoStepDrainAttack", drain),
            "factory": ("DrainFactory", ()),
        }
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in [*kinds, "factory-created attack"]}

        async def measure(kind: str, number: int) -> None:
            [block] = await fetch_blocks(watcher.rpc, [number])
            before, sims = len(simulator.stats.cost_ms), simulator.stats.simulations
            started = time.perf_counter()
            found = await simulator.examine(block)
            wall = (time.perf_counter() - started) * 1000
            probes = list(simulator.stats.cost_ms)[before:]
            runs[kind].append(
                {
                    "block_ms": wall,
                    "probe_ms": probes,
                    "simulations": simulator.stats.simulations - sims,
                    "proven": sorted({f.monitor_id for f in found}),
                }
            )

        for i in range(rounds):
            for kind, (artifact, args) in kinds.items():
                account = Account.create()
                w3.provider.make_request("anvil_setBalance", [account.address, hex(10**20)])  # type: ignore[arg-type]
                w3.provider.make_request("anvil_impersonateAccount", [account.address])  # type: ignore[arg-type]
                art = build[artifact]
                factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
                tx = factory.constructor(*args).transact({"from": account.address})
                receipt = w3.eth.wait_for_transaction_receipt(tx)
                await measure(kind, receipt["blockNumber"])
                if kind == "factory":
                    made = w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)
                    salt = i.to_bytes(32, "big")
                    tx = made.functions.create(salt, *drain).transact({"from": account.address})
                    await measure(
                        "factory-created attack", w3.eth.wait_for_transaction_receipt(tx)["blockNumber"]
                    )
        reads = len(simulator.judge.reads)
        await watcher.close()
    table: dict[str, Any] = {}
    every: list[float] = []
    for kind, items in runs.items():
        probe_ms = [ms for r in items for ms in r["probe_ms"]]
        every += probe_ms
        table[kind] = {
            "deployments": len(items),
            "probe_ms_p50": round(_quantile(probe_ms, 0.5), 1),
            "probe_ms_p99": round(_quantile(probe_ms, 0.99), 1),
            "simulations_mean": round(statistics.fmean(r["simulations"] for r in items), 1) if items else 0,
            "proven": sum(1 for r in items if r["proven"]),
            "monitors": sorted({m for r in items for m in r["proven"]}),
        }
    results = {
        "rounds": rounds,
        "view_calls_per_probe": reads,
        "kinds": table,
        "probe_ms_p50": round(_quantile(every, 0.5), 1),
        "probe_ms_p99": round(_quantile(every, 0.99), 1),
        "probe_runs": len(every),
        "stats": {k: v for k, v in vars(simulator.stats).items() if k != "cost_ms"},
    }
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.rounds))
    for kind, row in results["kinds"].items():
        print(
            f"{kind:24} n={row['deployments']:3}  p50 {row['probe_ms_p50']:7.1f} ms"
            f"  p99 {row['probe_ms_p99']:7.1f} ms"
            f"  sims {row['simulations_mean']:6.1f}  proven {row['proven']} {row['monitors']}"
        )
    print(
        f"every probe run: p50 {results['probe_ms_p50']} ms, p99 {results['probe_ms_p99']} ms"
        f" ({results['probe_runs']} runs; {results['view_calls_per_probe']} view calls before and after each)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
