"""The engine's backfill economies, on synthetic blocks: detectors are called only on blocks that can
interest them, and a quiet block behind the head takes its parent's reads instead of asking the node."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode, encode
from test_abi_and_reads import CONTRACTS, TOKEN, TRANSFER  # type: ignore[import-not-found]
from test_engine import block  # type: ignore[import-not-found]

from breakglass.chain.checkpoint import Checkpoint
from breakglass.config.monitors import EventMonitor, InvariantMonitor
from breakglass.detect.abi import EventAbi
from breakglass.detect.base import BlockContext, Interest
from breakglass.detect.engine import DetectionEngine
from breakglass.detect.filters import EventDetector
from breakglass.detect.invariants import InvariantDetector, InvariantSet
from breakglass.detect.reads import ReadCall, RpcBatchExecutor
from breakglass.domain import Block, Finding, Hash32
from breakglass.errors import RpcError


class CountingReads:
    """One balance for every call; records the block of every read the engine asks for."""

    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.blocks: list[int | str] = []

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]:
        self.blocks.append(block)
        return [encode(["uint256"], [self.balance]) for _ in calls]


class Spy:
    """A detector that only records the blocks it was shown."""

    def __init__(self, interest: object | None = None) -> None:
        self.monitor_id = "spy"
        self.seen: list[int] = []
        if interest is not None:
            self.interest = interest

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        self.seen.append(ctx.block.number)
        return []


def record_calls(detector: Any) -> list[int]:
    """Wrap ``detector.on_block`` so that the returned list collects the blocks it is called on."""
    seen: list[int] = []
    original = detector.on_block

    def counted(ctx: BlockContext) -> list[Finding]:
        seen.append(ctx.block.number)
        return original(ctx)  # type: ignore[no-any-return]

    detector.on_block = counted
    return seen


def invariant(expect: str = "balance >= 500") -> InvariantDetector:
    cfg = InvariantMonitor(
        id="floor",
        kind="invariant",
        severity="critical",
        calls={"balance": "token.balanceOf(vault)"},
        expect=expect,
    )
    return InvariantDetector(InvariantSet.build([cfg], CONTRACTS))


async def test_an_event_monitor_is_not_called_on_blocks_without_its_log() -> None:
    events = EventDetector(
        EventMonitor(id="moves", kind="event", contract="token", event="Transfer"),
        TOKEN,
        EventAbi.of(TRANSFER),
    )
    every = Spy()
    engine = DetectionEngine([events, every], chain_id=1, contracts=CONTRACTS, executor=CountingReads(1000))
    calls = record_calls(events)
    found = 0
    for number, outflow in [(1, None), (2, 100), (3, None), (4, 5)]:
        found += await engine.on_block(block(number, outflow))
    assert calls == [2, 4]  # only the blocks with a Transfer of the token
    assert every.seen == [1, 2, 3, 4]  # no declared interest: every block
    assert found == 2


class LogCounter(Spy):
    """Records how many decoded logs each block's context held."""

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        self.seen.append(len(ctx.logs))
        return []


async def test_a_log_is_decoded_only_when_a_detector_can_look_at_it() -> None:
    events = EventDetector(
        EventMonitor(id="moves", kind="event", contract="token", event="Transfer"),
        TOKEN,
        EventAbi.of(TRANSFER),
    )
    blind = LogCounter(Interest(transactions=True, other_logs=False))
    engine = DetectionEngine([invariant(), blind], chain_id=1, contracts=CONTRACTS, executor=CountingReads(1))
    await engine.on_block(block(2, 100))
    assert blind.seen == [0]  # the token's Transfer: no detector names it, none reads other logs
    engine = DetectionEngine([events, blind], chain_id=1, contracts=CONTRACTS, executor=CountingReads(1))
    assert await engine.on_block(block(2, 100)) == 1
    assert blind.seen == [0, 1]  # an event monitor names it
    reader = LogCounter(Interest(transactions=True))  # may read any log (governance, flows, plugins)
    engine = DetectionEngine([reader], chain_id=1, contracts=CONTRACTS, executor=CountingReads(1))
    await engine.on_block(block(2, 100))
    assert reader.seen == [1]


async def test_quiet_blocks_behind_the_head_take_their_parents_reads() -> None:
    reads = CountingReads(1000)
    engine = DetectionEngine([invariant()], chain_id=1, contracts=CONTRACTS, executor=reads)
    engine.on_head(10)
    blocks = [block(n, 100 if n == 5 else None) for n in range(1, 11)]
    await engine.prepare(blocks)
    for b in blocks:
        assert await engine.on_block(b) == 0
    # prefetched: block 5 (a transaction) and the head (always); block 1 was expected to carry its
    # parent's reads, but this engine never saw block 0, so it is read when it comes (once per start)
    assert reads.blocks == [5, 10, 1]
    assert engine.carried_reads == 7


async def test_a_carried_value_still_breaks_an_invariant_and_the_head_is_read_afresh() -> None:
    reads = CountingReads(400)  # below the floor from the start
    engine = DetectionEngine([invariant()], chain_id=1, contracts=CONTRACTS, executor=reads)
    engine.on_head(4)
    found = []
    for n in range(1, 5):
        found += await engine.evaluate(block(n, None))
    assert [f.block_number for f in found] == [1]  # broken once, the quiet blocks carry the values
    assert reads.blocks == [1, 4]


async def test_no_carry_at_the_head_across_a_gap_or_after_a_reorg() -> None:
    reads = CountingReads(1000)
    engine = DetectionEngine([invariant()], chain_id=1, contracts=CONTRACTS, executor=reads)
    engine.on_head(3)
    await engine.evaluate(block(1, None))
    await engine.evaluate(block(3, None))  # its parent (2) was not evaluated: read
    engine.on_head(5)
    await engine.evaluate(block(4, None))  # carried from 3
    await engine.on_reorg([Checkpoint(4, "0x" + "00" * 31 + "04")])
    other = Block(4, Hash32("0x" + "ab" * 32), Hash32(f"0x{3:064x}"), 48, 1, ())
    await engine.evaluate(other)  # after a reorg nothing is carried: read
    assert reads.blocks == [1, 3, 4]


class FakeNode:
    """Answers eth_call for every view with one balance, through Multicall3's aggregate3 too."""

    MULTICALL = "0x" + "ca11" * 10

    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.calls: list[tuple[str, str]] = []  # (to, block tag)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, strict: bool = True) -> list[Any]:
        out: list[Any] = []
        for method, params in calls:
            assert method == "eth_call"
            call, tag = params
            self.calls.append((call["to"], tag))
            word = encode(["uint256"], [self.balance])
            if call["to"] == self.MULTICALL:
                (inner,) = decode(["(address,bool,bytes)[]"], bytes.fromhex(call["data"][10:]))
                out.append("0x" + encode(["(bool,bytes)[]"], [[(True, word) for _ in inner]]).hex())
            else:
                out.append("0x" + word.hex())
        return out


def through_multicall(node: FakeNode) -> DetectionEngine:
    """The floor invariant over ``node``, past blocks read through its Multicall3, head at block 3."""
    engine = DetectionEngine(
        [invariant()],
        chain_id=1,
        contracts=CONTRACTS,
        executor=RpcBatchExecutor(node),  # type: ignore[arg-type]
        multicall=FakeNode.MULTICALL,
        prove_reads=False,  # the reads of a node that cannot run the block reader (test_proven_reads.py)
    )
    engine.on_head(3)
    return engine


async def test_past_blocks_are_read_through_multicall_and_the_head_by_batch() -> None:
    node = FakeNode(400)
    engine = through_multicall(node)
    blocks = [block(n, 100) for n in (1, 2, 3)]  # every block has a transaction: every block is read
    await engine.prepare(blocks)
    found = [f for b in blocks for f in await engine.evaluate(b)]
    assert node.calls == [
        (FakeNode.MULTICALL, "0x1"),
        (FakeNode.MULTICALL, "0x2"),
        (CONTRACTS["token"][0], "0x3"),
    ]
    assert [(f.block_number, f.evidence["values"]["balance"]) for f in found] == [(1, 400)]  # decoded alike


async def test_a_multicall_address_without_the_contract_falls_back_to_call_by_call() -> None:
    class Empty(FakeNode):
        async def batch(
            self, calls: Sequence[tuple[str, Sequence[Any]]], *, strict: bool = True
        ) -> list[Any]:
            answers = await super().batch(calls, strict=strict)
            return [
                "0x" if to == self.MULTICALL else a
                for (to, _t), a in zip(self.calls[-len(calls) :], answers, strict=True)
            ]

    node = Empty(400)
    engine = through_multicall(node)
    blocks = [block(n, 100) for n in (1, 2, 3)]
    await engine.prepare(blocks)
    assert engine.multicall is None  # refused once, then never asked again
    found = [f for b in blocks for f in await engine.evaluate(b)]
    assert [(f.block_number, f.evidence["values"]["balance"]) for f in found] == [(1, 400)]
    token = CONTRACTS["token"][0]
    assert node.calls[-3:] == [(token, "0x1"), (token, "0x2"), (token, "0x3")]


class RacyNode(FakeNode):
    """Fails every call made by block number at the given heights; by block hash it answers."""

    def __init__(self, balance: int, racy: set[str], broken: bool = False) -> None:
        super().__init__(balance)
        self.racy = racy
        self.broken = broken

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, strict: bool = True) -> list[Any]:
        answers = await super().batch(calls, strict=strict)
        out: list[Any] = []
        for (_method, (_call, tag)), answer in zip(calls, answers, strict=True):
            by_hash = isinstance(tag, dict)
            fail = self.broken or (not by_hash and tag in self.racy)
            out.append(RpcError("eth_call", "execution reverted: panic 0x11") if fail else answer)
        return out


async def test_a_read_racing_the_next_block_is_asked_again_by_hash_and_heals() -> None:
    node = RacyNode(1000, racy={"0x2"})
    engine = DetectionEngine(
        [invariant()], chain_id=1, contracts=CONTRACTS, executor=RpcBatchExecutor(node), prove_reads=False
    )  # type: ignore[arg-type]
    found = []
    for n in (1, 2, 3):
        engine.on_head(n)
        found += await engine.evaluate(block(n, 100))
    assert found == []  # no "could not be evaluated" for block 2
    assert engine.retried_reads == 1
    assert ({"blockHash": f"0x{2:064x}"}) in [tag for _to, tag in node.calls]


async def test_a_call_that_keeps_failing_is_reported_once_and_retried_once() -> None:
    node = RacyNode(1000, racy=set(), broken=True)
    engine = DetectionEngine(
        [invariant()], chain_id=1, contracts=CONTRACTS, executor=RpcBatchExecutor(node), prove_reads=False
    )  # type: ignore[arg-type]
    found = []
    for n in (1, 2, 3):
        engine.on_head(n)
        found += await engine.evaluate(block(n, 100))
    assert [(f.block_number, f.severity.name) for f in found] == [(1, "MEDIUM")]  # could not be evaluated
    assert engine.retried_reads == 1  # block 1 only: afterwards it is a known failure


async def test_invariants_are_not_called_on_blocks_deeper_than_the_state_horizon() -> None:
    detector = invariant()
    seen = record_calls(detector)
    reads = CountingReads(1000)
    engine = DetectionEngine([detector], chain_id=1, contracts=CONTRACTS, executor=reads, state_horizon=3)
    engine.on_head(10)
    for n in range(1, 11):
        await engine.on_block(block(n, 100 if n in (2, 9) else None))
    # 1..6 are beyond the horizon: not read, and the invariants are not even called (quiet or not)
    assert seen == [7, 8, 9, 10]
    assert reads.blocks == [7, 9, 10]  # 8 carries 7's reads
    assert engine.skipped_reads == 6


async def test_carried_reads_reevaluate_only_invariants_that_read_the_block_or_prev() -> None:
    reads = CountingReads(1000)
    pure = InvariantMonitor(
        id="floor", kind="invariant", calls={"balance": "token.balanceOf(vault)"}, expect="balance >= 500"
    )
    # broken from block 3 on by time alone (timestamp = 12 * number): must still fire on a carried block
    stale = InvariantMonitor(
        id="stale",
        kind="invariant",
        calls={"balance": "token.balanceOf(vault)"},
        expect="block.timestamp < 30.0",
    )
    detector = InvariantDetector(InvariantSet.build([pure, stale], CONTRACTS))
    pure_evaluations = 0
    floor = detector.set.invariants[0]
    original = floor.expect.holds

    def counted(variables: dict[str, Any]) -> bool:
        nonlocal pure_evaluations
        pure_evaluations += 1
        return original(variables)

    floor.expect.holds = counted  # type: ignore[method-assign]
    engine = DetectionEngine([detector], chain_id=1, contracts=CONTRACTS, executor=reads)
    engine.on_head(6)
    found: list[Finding] = []
    for n in range(1, 7):
        found += await engine.evaluate(block(n, None))
    assert reads.blocks == [1, 6]  # 2..5 carried block 1's reads
    assert [(f.monitor_id, f.block_number) for f in found] == [("stale", 3)]
    assert pure_evaluations == 1  # block 1; after it the outcome is carried or memoized
