"""A breach keeps one identity while it lasts, and a restarted detector knows it (issue 20, item 1).

``snapshot()`` goes through JSON (as the follower stores it) into a new detector's ``restore()``: the
new process must not report an ongoing breach as new, and its flow window and set-up taint are the
ones the old process had.
"""

from __future__ import annotations

import json
from typing import Any

from test_abi_and_reads import CONTRACTS  # type: ignore[import-not-found]
from test_rewind import (  # type: ignore[import-not-found]
    ATTACKER,
    MIXER,
    ctx,
    flow,
    flow_blocks,
    invariant_detector,
    setup_detector,
    signals,
    tx,
)

from breakglass.domain import Finding, breach_of


def through_json(state: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(state))
    return loaded


def test_an_invariant_breach_keeps_its_identity_across_a_restart_and_a_new_one_gets_another() -> None:
    detector, key = invariant_detector("held >= 100.0")
    assert detector.on_block(ctx(1, reads={key: 100})) == []
    (first,) = detector.on_block(ctx(2, reads={key: 50}))
    assert first.breach == breach_of("inv", 1, {}, 2)
    assert detector.on_block(ctx(3, reads={key: 40})) == []  # still broken: nothing new

    restarted, _ = invariant_detector("held >= 100.0")
    restarted.restore(through_json(detector.snapshot()))
    assert restarted.on_block(ctx(4, reads={key: 40})) == []  # the restart knows it is already broken
    assert restarted.on_block(ctx(5, reads={key: 100})) == []  # it ends
    (second,) = restarted.on_block(ctx(6, reads={key: 10}))  # and begins again: another breach
    assert second.breach == breach_of("inv", 1, {}, 6) != first.breach


def test_prev_survives_a_restart() -> None:
    detector, key = invariant_detector("held >= prev.held * 0.9")
    detector.on_block(ctx(1, reads={key: 100}))
    restarted, _ = invariant_detector("held >= prev.held * 0.9")
    restarted.restore(through_json(detector.snapshot()))
    assert len(restarted.on_block(ctx(2, reads={key: 50}))) == 1  # halved since block 1, before the restart


def test_a_flow_keeps_its_window_and_its_breach_across_a_restart() -> None:
    detector = flow(window_blocks=10, max_outflow=100)
    assert flow_blocks(detector, [(1, None, 1000), (2, 60, 940)]) == []
    restarted = flow(window_blocks=10, max_outflow=100)
    restarted.restore(through_json(detector.snapshot()))
    assert flow_blocks(restarted, [(3, 60, 880)]) == [3]  # 60 + 60 over the window: block 2 counted
    assert restarted.breach_since == 3
    again = flow(window_blocks=10, max_outflow=100)
    again.restore(through_json(restarted.snapshot()))
    assert again.breach_since == 3 and again.quiet_until == restarted.quiet_until


def test_a_flow_raised_again_after_its_quiet_period_names_the_same_breach() -> None:
    detector = flow(window_blocks=2, max_outflow=100)
    raised: list[Finding] = []
    for number in range(1, 8):  # 150 leaves every block: over the limit all along
        raised += _flow_findings(detector, number, 150, 10_000 - 150 * number)
    assert len(raised) >= 2  # raised again once the quiet period passed
    assert {f.breach for f in raised} == {breach_of("out", 1, {}, 1)}


def _flow_findings(detector: Any, number: int, outflow: int, balance: int) -> list[Finding]:
    from test_abi_and_reads import TOKEN, VAULT, transfer_log  # type: ignore[import-not-found]

    from breakglass.detect.abi import AbiIndex
    from breakglass.detect.base import DecodedLog

    log = transfer_log(outflow)
    txs = (tx(VAULT, TOKEN, logs=(log,), salt=number),)
    decoded = AbiIndex(CONTRACTS).decode_log(log)
    assert decoded is not None
    context = ctx(number, *txs, reads={c.key: balance for c in detector.reads()})
    context.logs = [DecodedLog(log, "token", decoded[0], decoded[1], txs[0])]
    found: list[Finding] = detector.on_block(context)
    return found


def test_set_up_taint_survives_a_restart() -> None:
    detector = setup_detector()
    detector.on_block(ctx(1, tx(MIXER, ATTACKER, value=10**18)))
    restarted = setup_detector()
    restarted.restore(through_json(detector.snapshot()))
    found = restarted.on_block(ctx(2, tx(ATTACKER, None, created="0x" + "66" * 20)))
    assert signals(found) == ["tainted-deployment"]


def test_a_pending_finding_and_its_mined_self_name_the_same_breach() -> None:
    from breakglass.domain import FindingStage, Hash32, Severity

    tx_hash = Hash32("0x" + "ab" * 32)
    pending = Finding("push", Severity.HIGH, 1, 10, "t", stage=FindingStage.PENDING, tx_hash=tx_hash)
    mined = Finding("push", Severity.HIGH, 1, 11, "t", tx_hash=tx_hash, log_index=3)
    assert pending.fingerprint != mined.fingerprint
    assert pending.breach == mined.breach
