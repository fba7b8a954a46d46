"""High availability (issue 19): replicas as real OS processes, the active one SIGKILLed again and again.

    python -m benchmarks.ha                          # every part, 10 kills each
    python -m benchmarks.ha --part detect --kills 12 --ttl 3
    python -m benchmarks.ha --postgres postgresql://postgres@127.0.0.1:5432/test --nats nats://127.0.0.1:4222

Parts (each a function of the parsed arguments and a scratch folder, returning its figures):
- ``detect``: two detect replicas of one chain; failover time (takeover, resumed, caught up) p50/max,
  blocks missed, findings lost, duplicate actions; the baseline in the same run: one replica killed and
  restarted at once, with no standby (``benchmarks/ha_detect.py``).
- ``respond``: two responder replicas of one guardian key, the active one SIGKILLed as its guardian
  transaction is about to leave; failover time (kill -> the owed transaction sent by the standby)
  p50/max, duplicate transactions on chain, lost actions (``benchmarks/ha_respond.py``; the lease in
  NATS KV, or ``--lease postgres``); ``respond-postgres``: the same with the lease in PostgreSQL.
- ``simulate``: pending-transaction verdicts per second and p99 latency with 1, 2 and 4 simulate worker
  processes sharing the JetStream work queue, against the in-process judge in the same run
  (``benchmarks/simulate_queue.py``, which also runs alone and writes its own JSON).

PostgreSQL and NATS JetStream are the real servers (``--postgres``/``--nats``, default the test URLs
``BREAKGLASS_TEST_POSTGRES_URL``/``BREAKGLASS_TEST_NATS_URL`` or the local ones). Prints the figures
and writes ``benchmarks/results/ha.json`` (the parts run now replace their earlier figures there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "ha.json"


def _detect(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks.ha_detect import detector_failover

    return detector_failover(
        args.kills,
        folder,
        postgres=args.postgres,
        nats=args.nats,
        ttl=args.ttl,
        baseline=args.baseline_kills if args.baseline_kills is not None else max(args.kills // 2, 3),
    )


def _respond(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks.ha_respond import respond_part

    return respond_part(
        args.kills, folder, postgres=args.postgres, nats=args.nats, ttl=args.ttl, lease=args.lease
    )


def _simulate(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks.simulate_queue import main as simulate_queue

    return simulate_queue(["--nats", args.nats])


def _respond_postgres(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from benchmarks.ha_respond import respond_part

    return respond_part(
        args.kills, folder, postgres=args.postgres, nats=args.nats, ttl=args.ttl, lease="postgres"
    )


PARTS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "detect": _detect,
    "respond": _respond,
    "simulate": _simulate,
    "respond-postgres": _respond_postgres,
}
"""Each part's runner, in the order ``--part`` defaults to."""


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="repeatable; default all")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=3.0, help="ha.ttl_seconds of the replicas")
    parser.add_argument(
        "--baseline-kills",
        type=int,
        default=None,
        help="kills of a lone replica restarted (default kills/2, >= 3)",
    )
    parser.add_argument(
        "--lease", choices=["nats", "postgres"], default="nats", help="respond: where the lease lives"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BREAKGLASS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--nats", default=os.environ.get("BREAKGLASS_TEST_NATS_URL", "nats://127.0.0.1:4222"))
    args = parser.parse_args(argv if argv is not None else [])
    results: dict[str, Any] = {}
    for part in args.part or list(PARTS):
        with tempfile.TemporaryDirectory(prefix=f"bg-ha-{part}-") as tmp:
            results[part] = PARTS[part](args, Path(tmp))
        print(json.dumps({part: results[part]}, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Any] = {}
    if RESULTS.exists():
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
    RESULTS.write_text(json.dumps({**saved, **results}, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
