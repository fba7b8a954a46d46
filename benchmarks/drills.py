"""Drill scorecard as a benchmark: every scenario in both modes, defended, against its undefended baseline
measured in the same run from the same snapshot. Writes ``benchmarks/results/drills.json``.

    python -m benchmarks.drills [--scenario NAME] [--mode public|private|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from breakglass.devnet.solc import compile_contracts
from breakglass.drills.runner import DrillOptions, Mode, run_drill
from breakglass.drills.scenarios.devnet import resolve
from breakglass.drills.scorecard import summary
from breakglass.logs import configure_logging

RESULTS = Path(__file__).parent / "results" / "drills.json"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="all")
    parser.add_argument("--mode", default="both", choices=["public", "private", "both"])
    args = parser.parse_args(argv)
    configure_logging(level="critical")
    build = compile_contracts()
    modes = [Mode.PRIVATE, Mode.PUBLIC] if args.mode == "both" else [Mode(args.mode)]
    results = []
    for mode in modes:
        for scenario in resolve(args.scenario):
            opts = DrillOptions(mode=mode)
            result = asyncio.run(run_drill(scenario, build, opts))
            results.append(result)
            print(
                f"{scenario.name:20} {mode:7} baseline={result.baseline_loss_usd:>14,.0f} "
                f"loss={result.loss_usd:>14,.0f} preserved={result.preserved:.1%} "
                f"ttd_ms={result.ttd_ms} ttc_ms={result.ttc_ms}",
                flush=True,
            )
    out: dict[str, Any] = {"average_preserved": summary(results), "drills": [r.to_json() for r in results]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")
    return out


if __name__ == "__main__":
    main()
