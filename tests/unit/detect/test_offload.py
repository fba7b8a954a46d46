"""What the backfill worker process relies on: the stateless detectors travel to it pickled and find
there what they find here, and it sends a block back whole exactly when a detector here can want it."""

from __future__ import annotations

import pickle

from test_abi_and_reads import CONTRACTS, TOKEN  # type: ignore[import-not-found]
from test_engine import block  # type: ignore[import-not-found]

from breakglass.config.monitors import EventMonitor, TransactionMonitor
from breakglass.detect.build import build_one
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.offload import LocalInterest
from breakglass.detect.reads import ReadCall


class NoReads:
    async def execute(self, calls: list[ReadCall], block: int | str) -> list[bytes]:
        raise AssertionError("no state is read beyond the horizon")


def stateless() -> list[object]:
    from pathlib import Path

    monitors = [
        EventMonitor(id="moves", kind="event", contract="token", event="Transfer", where="args.value > 10"),
        TransactionMonitor(id="logs", kind="transaction", where="size(logs) > 0 && tx.value == 0"),
    ]
    return [build_one(m, CONTRACTS, Path("."), 1) for m in monitors]


def test_stateless_detectors_find_the_same_after_travelling_to_the_worker() -> None:
    here = stateless()
    there = pickle.loads(pickle.dumps(here))  # what the worker receives at its start
    assert all(getattr(d, "stateless", False) for d in there)
    mine = DetectionEngine(here, chain_id=1, contracts=CONTRACTS, executor=NoReads())  # type: ignore[arg-type]
    theirs = DetectionEngine(there, chain_id=1, contracts=CONTRACTS, executor=NoReads())  # type: ignore[arg-type]

    def judged(engine: DetectionEngine, number: int, outflow: int | None) -> list[tuple[int, object]]:
        return [
            (i, [(f.fingerprint, f.evidence) for f in found])
            for i, found in engine.judge_unread(block(number, outflow))
        ]

    for number, outflow in [(5, 100), (6, 3), (7, None)]:
        assert judged(theirs, number, outflow) == judged(mine, number, outflow)
    assert [i for i, _f in judged(mine, 5, 100)] == [0, 1]  # both fired there, in configuration order
    assert [i for i, _f in judged(mine, 6, 3)] == [1]


def test_a_block_goes_back_whole_only_when_a_detector_here_can_be_woken_by_it() -> None:
    transfer = block(5, 100)
    topic = transfer.transactions[0].receipt.logs[0].topics[0]  # type: ignore[union-attr]
    quiet = block(6, None)
    nothing = LocalInterest(always=False, transactions=False, logs=frozenset(), code=False)
    assert not nothing.wants(transfer) and not nothing.wants(quiet)
    assert LocalInterest(always=False, transactions=True, logs=frozenset(), code=False).wants(transfer)
    assert LocalInterest(always=True, transactions=False, logs=frozenset(), code=False).wants(quiet)
    its_log = LocalInterest(always=False, transactions=False, logs=frozenset({(TOKEN, topic)}), code=False)
    other_log = LocalInterest(
        always=False, transactions=False, logs=frozenset({("0x" + "99" * 20, topic)}), code=False
    )
    assert its_log.wants(transfer) and not other_log.wants(transfer)


def test_a_finding_travels_back_from_the_worker_unchanged() -> None:
    (finding,) = [
        f
        for _i, found in DetectionEngine(
            stateless(),
            chain_id=1,
            contracts=CONTRACTS,
            executor=NoReads(),  # type: ignore[arg-type]
        ).judge_unread(block(5, 100))[:1]
        for f in found
    ]
    back = pickle.loads(pickle.dumps(finding))
    assert back == finding and back.fingerprint == finding.fingerprint and back.breach == finding.breach
