"""The pause-coverage audit on the reference venue: what each playbook containment of
examples/playbooks.venue.yaml leaves open, with honest history to replay.

    python -m benchmarks.coverage_venue [--blocks 150] [--budget 12]

A fresh anvil, the safe venue, the benign generator for ``--blocks`` blocks (the history whose calls
are replayed), then ``audit coverage`` of the example playbooks on a fork of that node, as the venue's
guardian (contain-price-push, whose market comes from the pushed price's event, with market 0 as its
example evidence). The functions tried are the venue's own contracts (not the tokens, feeds, mixer or flash
lender of the devnet); value is the collateral token (and ether) held by the vault, the insurance
fund and the three markets. Prints the report; writes ``benchmarks/results/coverage_venue.json`` and
``.html``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from web3 import Web3

from breakglass.config import load_config
from breakglass.coverage.audit import AuditOptions
from breakglass.coverage.service import audit_config
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import compile_contracts
from breakglass.devnet.venue import VenueOptions, deploy_venue, role_key
from breakglass.drills.benign import BenignConfig, BenignTraffic

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "examples" / "playbooks.venue.yaml"
RESULTS = Path(__file__).parent / "results"
TRIED = ["vault", "insurance", "market_eth", "market_btc", "market_thin", "oracle", "guardian", "forwarder"]
HOLDERS = ["vault", "insurance", "market_eth", "market_btc", "market_thin"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=150, help="blocks of honest traffic first")
    parser.add_argument("--budget", type=int, default=12, help="generated calls per function")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Anvil(AnvilOptions()) as node:
        folder = Path(tmp)
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, compile_contracts())
        venue = deploy_venue(deployer, VenueOptions())
        deployer.manifest(node.url).write(folder / "manifest.json")
        traffic = BenignTraffic(venue, BenignConfig())
        traffic.fund()
        traffic.run(args.blocks)
        config = folder / "playbooks.yaml"
        text = PLAYBOOKS.read_text()
        config.write_text(
            text.replace("deployment: ../.breakglass/devnet/manifest.json", "deployment: manifest.json")
        )
        started = time.monotonic()
        report = audit_config(
            load_config(config, environ={}),
            guardian=role_key("guardian").address,
            contracts=TRIED,
            tokens=["usd"],
            holders=HOLDERS,
            evidence={"args.marketId": "0"},  # contain-price-push's market: the ETH market's push
            options=AuditOptions(history_blocks=args.blocks, budget=args.budget),
        )
        seconds = time.monotonic() - started
    print(report.text())
    print(f"audit took {seconds:.1f} s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coverage_venue.json").write_text(report.dumps())
    (RESULTS / "coverage_venue.html").write_text(report.html())


if __name__ == "__main__":
    main()
