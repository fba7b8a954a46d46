"""``rewind(to_block)`` on every stateful detector: after a reorg a detector judges the new branch as if
the orphaned blocks had never been (no double-counted outflow, no taint or ``prev`` from them)."""

from __future__ import annotations

from typing import Any

from test_abi_and_reads import CONTRACTS, TOKEN, VAULT, transfer_log  # type: ignore[import-not-found]

from breakglass.config.monitors import FlowMonitor, InvariantMonitor, PluginMonitor, SetupMonitor
from breakglass.detect.abi import AbiIndex
from breakglass.detect.base import BlockContext, DecodedLog, Detector
from breakglass.detect.flows import FlowDetector
from breakglass.detect.invariants import InvariantDetector, InvariantSet
from breakglass.detect.plugins import PluginDetector
from breakglass.detect.rewind import Rewindable, UndoLog
from breakglass.detect.setup import SetupDetector
from breakglass.domain import Address, Block, Finding, Hash32, Log, Receipt, Tx

MIXER = "0x" + "33" * 20
ATTACKER = "0x" + "44" * 20
STRANGER = "0x" + "55" * 20


def tx(
    sender: str,
    to: str | None,
    *,
    value: int = 0,
    logs: tuple[Log, ...] = (),
    created: str | None = None,
    status: int = 1,
    salt: int = 0,
) -> Tx:
    tx_hash = Hash32(f"0x{hash((sender, to, value, created, status, salt)) & (2**256 - 1):064x}")
    receipt = Receipt(tx_hash, status, 21_000, 1, Address(created) if created else None, logs)
    return Tx(
        tx_hash, Address(sender), Address(to) if to else None, value, b"", 0, 1, None, None, 1, 0, receipt
    )


def ctx(number: int, *txs: Tx, reads: dict[str, Any] | None = None, branch: int = 0) -> BlockContext:
    """Block ``number``; ``branch`` tells a replacement block (another hash) from the orphaned one."""
    block = Block(
        number,
        Hash32(f"0x{branch:02x}{number:062x}"),
        Hash32(f"0x{number - 1:064x}"),
        12 * number,
        1,
        tuple(txs),
    )
    return BlockContext(chain_id=1, block=block, reads=reads or {}, logs=[], contracts={})


def flow_blocks(detector: FlowDetector, blocks: list[tuple[int, int | None, int]]) -> list[int]:
    """Run ``(number, outflow or None, vault balance)`` blocks, ``number`` < 0 meaning
    ``rewind(-number)``; returns the blocks that raised a finding."""
    abi = AbiIndex(CONTRACTS)
    fired: list[int] = []
    for number, outflow, balance in blocks:
        if number < 0:
            detector.rewind(-number)
            continue
        logs: list[DecodedLog] = []
        txs: tuple[Tx, ...] = ()
        if outflow is not None:
            log = transfer_log(outflow)
            txs = (tx(VAULT, TOKEN, logs=(log,), salt=number),)
            decoded = abi.decode_log(log)
            assert decoded is not None
            logs.append(DecodedLog(log, "token", decoded[0], decoded[1], txs[0]))
        context = ctx(number, *txs, reads={c.key: balance for c in detector.reads()})
        context.logs = logs
        fired += [number for _ in detector.on_block(context)]
    return fired


def flow(**limits: Any) -> FlowDetector:
    cfg = FlowMonitor(id="out", kind="flow", token="token", holders=["vault"], **limits)
    return FlowDetector(cfg, CONTRACTS)


def test_a_transfer_replayed_on_the_new_branch_is_counted_once() -> None:
    detector = flow(window_blocks=10, max_outflow=100)
    # 60 leaves in block 3; a reorg replaces block 3 with a block carrying the same transfer
    fired = flow_blocks(detector, [(1, None, 1000), (2, None, 1000), (3, 60, 940), (-2, None, 0)])
    fired += flow_blocks(detector, [(3, 60, 940), (4, None, 940)])
    assert fired == []
    assert sum(n for _b, _t, n in detector.window) == 60


def test_outflow_that_slid_out_during_the_orphaned_blocks_comes_back() -> None:
    detector = flow(window_blocks=3, max_outflow=100)
    # block 2's 60 slid out of the window at orphaned block 5; the new block 4 still sees it
    flow_blocks(detector, [(1, None, 1000), (2, 60, 940), (3, None, 940), (4, None, 940), (5, None, 940)])
    fired = flow_blocks(detector, [(-3, None, 0), (4, 60, 880)])
    assert fired == [4]


def test_a_finding_on_an_orphaned_block_does_not_silence_the_new_branch() -> None:
    detector = flow(window_blocks=10, max_outflow=100)
    assert flow_blocks(detector, [(1, None, 1000), (2, 150, 850)]) == [2]
    # the finding of block 2 is retracted with it; the same drain on the new branch is reported again
    assert flow_blocks(detector, [(-1, None, 0), (2, 150, 850)]) == [2]


def test_a_seconds_window_is_rewound_too() -> None:
    detector = flow(window_seconds=60, max_outflow=100)
    flow_blocks(detector, [(1, None, 1000), (2, 80, 920)])
    assert flow_blocks(detector, [(-1, None, 0), (2, 80, 920), (3, None, 920)]) == []


def setup_detector(**extra: Any) -> SetupDetector:
    cfg = SetupMonitor(id="setup", kind="setup", protocol=["vault"], mixers=[MIXER], **extra)
    return SetupDetector(cfg, [VAULT])


def signals(findings: list[Finding]) -> list[str]:
    return [str(f.evidence["signal"]) for f in findings]


def test_a_taint_learned_on_an_orphaned_block_is_forgotten() -> None:
    detector = setup_detector()
    detector.on_block(ctx(1))
    detector.on_block(ctx(2, tx(MIXER, ATTACKER, value=10**18)))  # orphaned: the funding never happened
    detector.rewind(1)
    found = detector.on_block(ctx(2, tx(ATTACKER, None, created="0x" + "66" * 20), branch=1))
    assert signals(found) == []
    assert ATTACKER not in detector.taint


def test_a_taint_learned_before_the_ancestor_is_kept() -> None:
    detector = setup_detector()
    detector.on_block(ctx(1, tx(MIXER, ATTACKER, value=10**18)))
    detector.on_block(ctx(2))
    detector.rewind(1)
    found = detector.on_block(ctx(2, tx(ATTACKER, None, created="0x" + "66" * 20), branch=1))
    assert signals(found) == ["tainted-deployment"]


def test_a_fresh_contract_whose_first_touch_was_orphaned_is_reported_on_the_new_branch() -> None:
    detector = setup_detector()
    fresh = "0x" + "77" * 20
    detector.on_block(ctx(1, tx(STRANGER, None, created=fresh)))
    touch = tx(STRANGER, fresh, logs=(transfer_log(5),))  # a Transfer naming the vault
    assert signals(detector.on_block(ctx(2, touch))) == ["fresh-contract-interaction"]
    detector.rewind(1)
    assert signals(detector.on_block(ctx(2, touch, branch=1))) == ["fresh-contract-interaction"]
    detector.rewind(0)  # the contract itself was orphaned: no longer fresh, no longer known
    assert detector.fresh == {} and detector.seen_fresh == set()


def test_reverts_of_orphaned_blocks_do_not_count_towards_a_burst() -> None:
    detector = setup_detector(reverts={"count": 3, "window_blocks": 10})
    revert = tx(STRANGER, VAULT, status=0)
    for number in (1, 2):
        assert detector.on_block(ctx(number, revert)) == []
    assert signals(detector.on_block(ctx(3, revert))) == ["revert-burst"]
    detector.rewind(2)
    # the third revert is on the new branch: the burst is reached (and reported) again, once
    assert signals(detector.on_block(ctx(3, revert, branch=1))) == ["revert-burst"]
    assert list(detector.reverts[STRANGER.lower()]) == [1, 2, 3]


def test_expiries_of_orphaned_blocks_are_undone() -> None:
    detector = setup_detector(fresh_blocks=10)
    fresh = "0x" + "77" * 20
    detector.on_block(ctx(1, tx(STRANGER, None, created=fresh)))
    detector.on_block(ctx(64))  # every 64 blocks contracts older than fresh_blocks stop being fresh
    assert fresh not in detector.fresh
    detector.rewind(63)
    assert detector.fresh[fresh] == (1, STRANGER.lower())


def invariant_detector(expect: str) -> tuple[InvariantDetector, str]:
    cfg = InvariantMonitor(
        id="inv", kind="invariant", calls={"held": "token.balanceOf(vault)"}, expect=expect
    )
    invariants = InvariantSet.build([cfg], CONTRACTS)
    return InvariantDetector(invariants), invariants.calls()[0].key


def test_prev_never_comes_from_an_orphaned_block() -> None:
    detector, key = invariant_detector("held >= prev.held * 0.9")
    assert detector.on_block(ctx(1, reads={key: 100})) == []
    assert len(detector.on_block(ctx(2, reads={key: 50}))) == 1  # orphaned: a halving
    detector.rewind(1)
    # on the new branch block 2 holds 85: compared with block 1's 100, not the orphaned 50
    assert len(detector.on_block(ctx(2, reads={key: 85}, branch=1))) == 1


def test_a_breach_repeated_on_the_new_branch_is_reported_again() -> None:
    detector, key = invariant_detector("held >= 100.0")
    assert detector.on_block(ctx(1, reads={key: 100})) == []
    assert len(detector.on_block(ctx(2, reads={key: 50}))) == 1
    detector.rewind(1)  # the finding of block 2 was retracted with it
    assert len(detector.on_block(ctx(2, reads={key: 50}, branch=1))) == 1
    assert detector.on_block(ctx(3, reads={key: 50})) == []  # still broken: once


def test_a_breach_before_the_ancestor_stays_reported_once() -> None:
    detector, key = invariant_detector("held >= 100.0")
    assert len(detector.on_block(ctx(1, reads={key: 50}))) == 1
    detector.on_block(ctx(2, reads={key: 50}))
    detector.rewind(1)
    assert detector.on_block(ctx(2, reads={key: 50}, branch=1)) == []


class Counter:
    """A stateful plugin: counts transactions, and forgets orphaned blocks' ones."""

    def __init__(self, options: dict[str, object]) -> None:
        self.per_block: dict[int, int] = {}

    def on_transaction(self, ctx: Any, tx: Tx, block: Block) -> list[Finding]:
        self.per_block[block.number] = self.per_block.get(block.number, 0) + 1
        return []

    def rewind(self, to_block: int) -> None:
        self.per_block = {n: c for n, c in self.per_block.items() if n <= to_block}


class Stateless:
    def __init__(self, options: dict[str, object]) -> None:
        pass


def test_a_plugin_is_rewound_through_its_own_rewind() -> None:
    cfg = PluginMonitor(id="count", kind="plugin", plugin="x:Counter")
    plugin = Counter({})
    detector = PluginDetector(cfg, plugin, {}, 1)
    detector.on_block(ctx(1, tx(STRANGER, VAULT)))
    detector.on_block(ctx(2, tx(STRANGER, VAULT), tx(ATTACKER, VAULT)))
    detector.rewind(1)
    assert plugin.per_block == {1: 1}
    PluginDetector(cfg, Stateless({}), {}, 1).rewind(1)  # a plugin without rewind: nothing to do


def test_every_stateful_detector_implements_the_protocol() -> None:
    detectors: list[Detector] = [
        flow(window_blocks=3, max_outflow=1),
        setup_detector(),
        invariant_detector("held > 0.0")[0],
        PluginDetector(PluginMonitor(id="p", kind="plugin", plugin="x:Y"), Stateless({}), {}, 1),
    ]
    assert all(isinstance(d, Rewindable) for d in detectors)


def test_the_undo_log_restores_in_reverse_and_keeps_only_the_last_blocks() -> None:
    undo = UndoLog(depth=2)
    state: dict[str, int] = {"a": 1}
    seen: set[str] = set()
    for number, key in ((1, "b"), (2, "c"), (3, "a")):
        undo.begin(number)
        undo.put(state, key, number * 10)
        undo.add(seen, key)
    undo.begin(4)
    undo.delete(state, "b")
    undo.discard(seen, "b")
    undo.rewind(2)
    assert state == {"a": 1, "b": 10, "c": 20} and seen == {"b", "c"}
    assert len(undo) == 0  # blocks 3 and 4 undone; block 2's record had fallen off (depth 2)
    undo.rewind(0)  # older than the log: nothing left to undo
    assert state == {"a": 1, "b": 10, "c": 20}
