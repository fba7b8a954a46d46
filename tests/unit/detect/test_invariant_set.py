"""The invariant evaluator apart from the chain: which calls, pure evaluation, any executor.

This is the contract the mempool simulator relies on: it brings a ``CallExecutor`` that reads a
simulated post-state, and reuses ``InvariantSet`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode
from test_abi_and_reads import CONTRACTS  # type: ignore[import-not-found]

from breakglass.config.monitors import InvariantMonitor
from breakglass.detect.invariants import InvariantSet
from breakglass.detect.reads import ReadCall
from breakglass.errors import RpcError


class PostState:
    """An executor answering from a dict of balances, as a simulator's post-state would."""

    def __init__(self, balance: int, *, revert: bool = False) -> None:
        self.balance = balance
        self.revert = revert
        self.seen: list[list[str]] = []

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]:
        self.seen.append([c.key for c in calls])
        if self.revert:
            return [RpcError("eth_call", "execution reverted") for _ in calls]
        return [
            encode(["uint256"], [self.balance])
            if "balanceOf" in c.key
            else encode(["uint256", "uint256"], [5, 6])
            for c in calls
        ]


def invariants() -> InvariantSet:
    monitors = [
        InvariantMonitor(
            id="floor", kind="invariant", calls={"held": "token.balanceOf(vault)"}, expect="held >= 1000.0"
        ),
        InvariantMonitor(
            id="drop",
            kind="invariant",
            calls={"held": "token.balanceOf(vault)", "r": "token.reserves()"},
            expect="held >= prev.held * 0.5 && r.usd == 5.0",
        ),
    ]
    return InvariantSet.build(monitors, CONTRACTS)


async def test_calls_are_deduplicated_across_invariants_and_read_in_one_execution() -> None:
    inv = invariants()
    state = PostState(2000)
    assert await inv.check(state, "pending", block_number=10, timestamp=100) == []
    assert state.seen == [["token.balanceOf(vault)", "token.reserves()"]]


async def test_a_simulated_post_state_is_judged_without_moving_prev() -> None:
    inv = invariants()
    await inv.check(PostState(2000), 10, block_number=10, timestamp=100)
    violations = await inv.check(PostState(900), "pending", block_number=11, timestamp=112, remember=False)
    assert sorted(v.monitor_id for v in violations) == ["drop", "floor"]
    assert violations[0].values["held"] == 900
    # the simulation did not become the previous block: the real next block compares with 2000
    assert [v.monitor_id for v in await inv.check(PostState(1500), 11, block_number=11, timestamp=112)] == []


async def test_failed_reads_are_violations_that_say_so() -> None:
    violations = await invariants().check(PostState(0, revert=True), 10, block_number=10, timestamp=100)
    assert {v.monitor_id for v in violations} == {"floor", "drop"}
    assert all(v.error and "reverted" in v.error for v in violations)


def test_evaluate_is_pure_on_decoded_values() -> None:
    inv = invariants()
    values = {"token.balanceOf(vault)": 10, "token.reserves()": {"usd": 5, "_1": 6}}
    assert [v.monitor_id for v in inv.evaluate(values, block_number=1, timestamp=1)] == ["floor"]


def test_a_simulation_compares_with_the_state_it_starts_from_when_no_block_was_seen() -> None:
    """Started on a quiet chain, no block has been evaluated yet: a pending transaction that halves the
    balance must still break ``prev``-based invariants, judged against the head's own reads (``before``);
    without them ``prev`` is the post-state itself and nothing can break."""
    inv = invariants()
    head = {"token.balanceOf(vault)": 2000, "token.reserves()": {"usd": 5, "_1": 6}}
    after = {"token.balanceOf(vault)": 1100, "token.reserves()": {"usd": 5, "_1": 6}}
    assert inv.evaluate(after, block_number=11, timestamp=1, remember=False) == []
    halved = {**after, "token.balanceOf(vault)": 900}
    drop = inv.evaluate(halved, block_number=11, timestamp=1, remember=False, before=head)
    assert sorted(v.monitor_id for v in drop) == ["drop", "floor"]
    # the head's reads are prev even after a remembered block with other values (the follower lags)
    inv.evaluate({**head, "token.balanceOf(vault)": 1200}, block_number=9, timestamp=1)
    lagging = inv.evaluate(halved, block_number=11, timestamp=1, remember=False)
    assert [v.monitor_id for v in lagging] == ["floor"]  # 900 >= 1200 / 2: no drop against block 9
    judged = inv.evaluate(halved, block_number=11, timestamp=1, remember=False, before=head)
    assert sorted(v.monitor_id for v in judged) == ["drop", "floor"]
