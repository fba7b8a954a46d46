"""State reads are of the block they claim: each answer of the block reader carries what the node ran
it on (``detect/proof.py``); one of another block's state is asked again, then given up loudly, and a
node that cannot run the reader is read as before, without proof."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eth_abi.abi import decode, encode
from test_abi_and_reads import CONTRACTS  # type: ignore[import-not-found]
from test_engine import block  # type: ignore[import-not-found]
from test_engine_backfill import invariant  # type: ignore[import-not-found]

from breakglass.detect.engine import DetectionEngine
from breakglass.detect.proof import HISTORY, READER, READER_CODE, ProvenReads
from breakglass.detect.reads import RpcBatchExecutor, parse_call
from breakglass.domain import Block
from breakglass.errors import RpcError

Answer = Callable[[Block], tuple[int, int, int, int]]
"""block -> (number, parent, history parent, history self) the node says it ran on, as block numbers
whose hash the fake uses (0: a zero word)"""


def word(n: int) -> bytes:
    return bytes(32) if n == 0 else bytes.fromhex(f"{n:064x}")  # block(n).hash is f"0x{n:064x}"


def own_state(b: Block) -> tuple[int, int, int, int]:
    return b.number, b.number - 1, b.number - 1, 0


def next_state(b: Block) -> tuple[int, int, int, int]:
    """anvil mid-mining: block N's environment on block N+1's state (N's hash already in the history)."""
    return b.number, b.number - 1, b.number - 1, b.number


class ReaderNode:
    """Answers the block reader's eth_call with one balance per call and the proof ``answers`` gives
    (one function per attempt; the last one repeats)."""

    def __init__(self, balances: dict[int, int], answers: Sequence[Answer], refuse: bool = False) -> None:
        self.balances = balances
        self.answers = list(answers)
        self.refuse = refuse
        self.requests: list[tuple[str, Any]] = []

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], *, strict: bool = True) -> list[Any]:
        out: list[Any] = []
        for method, params in calls:
            assert method == "eth_call"
            call, tag = params[0], params[1]
            self.requests.append((call["to"], tag))
            number = int(tag["blockHash"], 16) if isinstance(tag, dict) else int(tag, 16)
            balance = encode(["uint256"], [self.balances[number]])
            if call["to"] != READER:
                out.append("0x" + balance.hex())
                continue
            assert params[2] == {
                READER: {"code": READER_CODE},
                HISTORY: {"code": "0x6000355460005260206000f3"},
            }
            if self.refuse:
                out.append(RpcError("eth_call", "state overrides not supported", recoverable=False))
                continue
            (inner,) = decode(["(address,bytes)[]"], bytes.fromhex(call["data"][10:]))
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            env, parent, h_parent, h_self = answer(block(number, 1))
            values = [env, word(parent), word(h_parent), word(h_self), [(True, balance) for _ in inner]]
            out.append(
                "0x" + encode(["uint256", "bytes32", "bytes32", "bytes32", "(bool,bytes)[]"], values).hex()
            )
        return out


def engine_over(node: ReaderNode) -> DetectionEngine:
    return DetectionEngine(
        [invariant()],
        chain_id=1,
        contracts=CONTRACTS,
        executor=RpcBatchExecutor(node),  # type: ignore[arg-type]
    )


async def test_reads_shown_to_be_of_their_block_are_used_in_one_call_pinned_to_its_hash() -> None:
    node = ReaderNode({1: 1000, 2: 100}, [own_state])
    engine = engine_over(node)
    found = [f for n in (1, 2) for f in await engine.evaluate(block(n, 1))]
    assert [(f.block_number, f.evidence["values"]["balance"]) for f in found] == [(2, 100)]
    assert node.requests == [(READER, {"blockHash": f"0x{n:064x}"}) for n in (1, 2)]
    assert engine.rereads == engine.unproven_reads == 0


async def test_a_read_of_the_next_blocks_state_is_asked_again_and_the_breach_is_not_missed() -> None:
    # block 2 breaks the floor and block 3 restores it; the first answer for block 2 is block 3's state
    balances = {1: 1000, 2: 100, 3: 1000}

    def ahead(b: Block) -> tuple[int, int, int, int]:
        return next_state(b)

    node = ReaderNode(balances, [own_state])
    engine = engine_over(node)
    await engine.evaluate(block(1, 1))
    racy = {2: 1000}  # what block 3's state says at block 2

    class Racy(ReaderNode):
        async def batch(
            self, calls: Sequence[tuple[str, Sequence[Any]]], *, strict: bool = True
        ) -> list[Any]:
            if racy:
                self.balances = {**balances, **racy}
                racy.clear()
                self.answers = [ahead, own_state]
            else:
                self.balances = balances
            return await super().batch(calls, strict=strict)

    racy_node = Racy(balances, [own_state])
    engine.executor = RpcBatchExecutor(racy_node)  # type: ignore[arg-type]
    found = await engine.evaluate(block(2, 1))
    assert [(f.block_number, f.evidence["values"]["balance"]) for f in found] == [(2, 100)]
    assert engine.rereads == 1
    assert len(racy_node.requests) == 2


async def test_reads_that_stay_on_another_blocks_state_are_given_up_loudly() -> None:
    node = ReaderNode({1: 1000}, [lambda b: (b.number + 1, b.number, b.number, b.number)])  # another block
    engine = engine_over(node)
    found = await engine.evaluate(block(1, 1))
    assert [(f.severity.name, f.title) for f in found] == [
        (
            "MEDIUM",
            "invariant could not be evaluated: a call failed: the node answered another block's state "
            "4 times (ran on block 2's environment)",
        )
    ]
    assert len(node.requests) == 4
    assert engine.unproven_reads == 1


async def test_a_parent_slot_not_yet_written_means_the_state_before_the_block() -> None:
    proven = ProvenReads([parse_call("token.balanceOf(vault)", CONTRACTS, "m")])
    proof = {"own": (5, 4, 4, 0), "behind": (5, 4, 0, 0), "ahead": (5, 4, 4, 5), "other branch": (5, 9, 4, 0)}
    b = block(5, 1)
    outcomes = {}
    for name, (env, parent, h_parent, h_self) in proof.items():
        answer = encode(
            ["uint256", "bytes32", "bytes32", "bytes32", "(bool,bytes)[]"],
            [env, word(parent), word(h_parent), word(h_self), [(True, bytes(32))]],
        )
        parsed, _raw = proven.parse("0x" + answer.hex())
        outcomes[name] = proven.check(parsed, b) is None
    # a chain without EIP-2935 (the parent slot is zero) is checked on its environment alone, until a
    # block has shown that this chain keeps the history: from then on a zero parent slot is refused
    assert outcomes == {"own": True, "behind": False, "ahead": False, "other branch": False}
    fresh = ProvenReads(proven.calls)
    behind = encode(
        ["uint256", "bytes32", "bytes32", "bytes32", "(bool,bytes)[]"],
        [5, word(4), bytes(32), bytes(32), [(True, bytes(32))]],
    )
    assert fresh.check(fresh.parse("0x" + behind.hex())[0], b) is None


async def test_a_node_refusing_state_overrides_is_read_as_before_and_said_once() -> None:
    node = ReaderNode({n: 1000 for n in range(1, 6)}, [own_state], refuse=True)
    engine = engine_over(node)
    for n in range(1, 6):
        engine.on_head(n)
        assert await engine.evaluate(block(n, 1)) == []
    readers = [to for to, _tag in node.requests if to == READER]
    assert len(readers) == 3  # three blocks in a row refused: the reader is not asked again
    assert engine.unproven_reads == 3
    assert [to for to, _tag in node.requests[-2:]] == [CONTRACTS["token"][0]] * 2  # plain reads since


async def test_early_listeners_hear_each_block_once_before_its_window_is_read() -> None:
    """``early_listeners`` (attack simulation's follow-up check): a fetched window's blocks are told
    before their state reads go out, and ``on_block`` does not tell them again; a head handled
    without ``prepare`` is told by ``on_block``, before it is evaluated."""
    node = ReaderNode({1: 1000, 2: 1000, 3: 1000}, [own_state])
    engine = engine_over(node)
    heard: list[tuple[int, int]] = []
    engine.early_listeners.append(lambda b: heard.append((b.number, len(node.requests))))
    await engine.prepare([block(1, 1), block(2, 1)])
    assert heard == [(1, 0), (2, 0)]  # told before any read was sent
    for n in (1, 2):
        await engine.on_block(block(n, 1))
    await engine.on_block(block(3, 1))
    assert heard == [(1, 0), (2, 0), (3, 2)]  # the head alone: told once, before its own read
