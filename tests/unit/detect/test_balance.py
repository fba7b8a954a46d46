"""Balance monitors: one finding per breach of the floor, none while it stays broken, rewound by a reorg."""

from __future__ import annotations

from breakglass.config.monitors import BalanceMonitor
from breakglass.detect.balance import BalanceDetector
from breakglass.detect.base import BlockContext
from breakglass.domain import Block, Severity

GUARDIAN = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _ctx(number: int, wei: int | None, *, state_read: bool = True) -> BlockContext:
    block = Block(number, f"0x{number:064x}", f"0x{number - 1:064x}", 1_700_000_000 + number, None, ())  # type: ignore[arg-type]
    balances = {} if wei is None else {GUARDIAN.lower(): wei}
    return BlockContext(31337, block, {}, (), {}, state_read=state_read, balances=balances)


def _detector() -> BalanceDetector:
    cfg = BalanceMonitor(
        id="guardian-gas", kind="balance", severity="critical", address=GUARDIAN, min_eth=0.05
    )
    return BalanceDetector(cfg)


def test_one_finding_when_the_balance_drops_below_the_floor_and_another_only_after_recovery() -> None:
    detector = _detector()
    assert detector.balances() == (GUARDIAN.lower(),)
    assert detector.on_block(_ctx(1, 10**18)) == []
    [finding] = detector.on_block(_ctx(2, 10**16))
    assert finding.monitor_id == "guardian-gas" and finding.severity is Severity.CRITICAL
    assert finding.evidence == {"account": GUARDIAN.lower(), "balance_wei": 10**16, "floor_wei": 5 * 10**16}
    assert detector.on_block(_ctx(3, 0)) == []  # still broken: no second finding
    assert detector.on_block(_ctx(4, 10**18)) == []  # funded again
    assert len(detector.on_block(_ctx(5, 0))) == 1


def test_no_balance_read_means_no_verdict() -> None:
    detector = _detector()
    assert detector.on_block(_ctx(1, None)) == []
    assert detector.on_block(_ctx(2, 0, state_read=False)) == []


def test_a_reorg_forgets_a_breach_seen_on_the_orphaned_blocks() -> None:
    detector = _detector()
    detector.on_block(_ctx(10, 10**18))
    assert len(detector.on_block(_ctx(11, 0))) == 1
    detector.rewind(10)
    assert len(detector.on_block(_ctx(11, 0))) == 1  # the new branch's breach is a new finding
