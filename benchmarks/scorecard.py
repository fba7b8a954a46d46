"""The README's drill scorecard as a drift benchmark: every scenario, private and public, defended with
the shipped ``examples/`` configuration and honest traffic, compared with the figures published in
README.md (``breakglass.drills.readme.Tolerance``: a published 100.0% must stay exactly 100.0%, a partly
preserved drill within 5 percentage points, TTD/TTC within 3 blocks, ms only past max(5 s, 100%)).
Writes ``benchmarks/results/scorecard.json``.

    python -m benchmarks.scorecard [--check] [--write] [--mode private|public|both] [--runs N]
                                   [--readme README.md]

``--check`` exits 1 (printing each difference) when a figure drifted; ``--write`` rewrites the README's
tables instead (what ``breakglass drill scorecard --write README.md`` does). ``--runs N`` plays each
scenario N times and compares (or publishes) the median of each figure (``readme.median_rows``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from breakglass.devnet.solc import compile_contracts
from breakglass.drills import readme
from breakglass.drills.runner import DrillResult, parse_mode, run_drills
from breakglass.drills.scenarios.devnet import resolve
from breakglass.logs import configure_logging

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results" / "scorecard.json"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a README figure drifted")
    parser.add_argument("--write", action="store_true", help="rewrite the README's scorecard tables")
    parser.add_argument("--mode", default="both", choices=["private", "public", "both"])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--runs", type=int, default=1, help="plays per scenario (figures: their median)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    configure_logging(level="critical")
    modes = list(readme.MODES) if args.mode == "both" else [args.mode]
    load, started = os.getloadavg()[0], time.monotonic()

    def show(r: DrillResult) -> None:
        print(
            f"{r.scenario:20} {r.mode:7} baseline={r.baseline_loss_usd:>14,.0f} loss={r.loss_usd:>14,.0f} "
            f"preserved={r.preserved:.1%} ttd_blocks={r.ttd_blocks} ttc_blocks={r.ttc_blocks} "
            f"deploy_ttc_blocks={r.deploy_ttc_blocks}",
            flush=True,
        )

    played = run_drills(
        resolve("all"), [parse_mode(m) for m in modes], compile_contracts(), on_result=show, runs=args.runs
    )
    plays = [r.to_json() for r in played]
    rows = readme.median_rows(plays)
    seconds = time.monotonic() - started
    tolerance = readme.Tolerance()
    drifts = readme.compare(args.readme.read_text(encoding="utf-8"), rows, tolerance, modes)
    for drift in drifts:
        print(f"drift: {drift}")
    print(f"{len(drifts)} figure(s) drifted past the tolerances; {seconds:,.0f} s at load {load:.1f}")
    command = "python -m benchmarks.scorecard" + (f" --runs {args.runs}" if args.runs > 1 else "")
    out: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() - seconds)),
        "command": command,
        "runs": args.runs,
        "seconds": round(seconds, 1),
        "load_average": load,
        "average_preserved": readme.averages(rows),
        "drifted": len(drifts),
        "tolerance": tolerance.to_json(),
        "drifts": [str(d) for d in drifts],
        "drills": rows,
        **({"plays": plays} if args.runs > 1 else {}),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS}")
    if args.write:
        text = args.readme.read_text(encoding="utf-8")
        note = readme.measured_note(command + " --write", out["measured_at"], seconds, load)
        for mode in modes:
            text = readme.replace_section(text, mode, readme.render_section(mode, rows, note))
        args.readme.write_text(text, encoding="utf-8")
        print(f"rewrote the scorecard in {args.readme}")
    if args.check and drifts:
        raise SystemExit(1)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
