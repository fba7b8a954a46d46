"""The pause-coverage audit on Synthetix PerpsV2: what each suspension of breakglass.yaml leaves open.

    .venv/bin/python examples/synthetix/coverage.py [--steps 150] [--json F] [--html F]

anvil with the perps deployed (deploy.py), honest traffic from drill.py for ``--steps`` transactions
(the history whose calls are replayed), then ``audit coverage`` of breakglass.yaml's playbooks on a
fork, as the guardian (SystemStatus "Futures": canSuspend). The functions tried are the two markets'
(their proxies dispatch to the PerpsV2 implementation contracts) and sUSD's. Value: Synthetix pays a
trader by minting sUSD against the debt pool (a margin withdrawal mints, it transfers nothing), so
new sUSD supply is counted as value out (``minted``), with the sUSD the markets hold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drill import HonestTraffic, devnet

from breakglass.config import load_config
from breakglass.coverage.audit import AuditOptions
from breakglass.coverage.service import audit_config

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="honest transactions first")
    parser.add_argument("--budget", type=int, default=12, help="generated calls per function")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--html", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, devnet() as (_node, w3, d):
        folder = Path(tmp)
        d.manifest().write(folder / "manifest.json")
        traffic = HonestTraffic(w3, d)
        traffic.fund()
        for _ in range(args.steps):
            traffic.step()
        text = (HERE / "breakglass.yaml").read_text()
        config = folder / "breakglass.yaml"
        config.write_text(
            text.replace("deployment: ../../.breakglass/synthetix/manifest.json", "deployment: manifest.json")
        )
        report = audit_config(
            load_config(config, environ={}),
            guardian=d.accounts["guardian"],
            contracts=["perps_eth", "perps_btc", "susd"],
            tokens=["susd"],
            holders=["perps_eth", "perps_btc"],
            minted=["susd"],
            options=AuditOptions(history_blocks=w3.eth.block_number, budget=args.budget),
        )
    print(report.text())
    if args.json:
        args.json.write_text(report.dumps())
    if args.html:
        args.html.write_text(report.html())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
