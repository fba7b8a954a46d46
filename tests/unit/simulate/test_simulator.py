"""The simulator apart from the node: a fake ``eth_simulateV1`` over an in-memory token balance.

Relevance, request layout, the verdict on the post-state (invariants broken *by* the tx, flows on a copy
of their window), dedupe and replacements, and transactions already mined when judged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_abi.abi import decode, encode

from breakglass.chain.rpc import RpcClient
from breakglass.config.monitors import FlowMonitor, InvariantMonitor
from breakglass.detect.abi import AbiIndex
from breakglass.detect.base import Detector
from breakglass.detect.flows import FlowDetector
from breakglass.detect.invariants import InvariantDetector, InvariantSet
from breakglass.domain import Address, FindingStage, Hash32, PendingTx, Severity, Tx
from breakglass.errors import ChainDataError
from breakglass.simulate import (
    Judge,
    PendingSimulator,
    Relevance,
    RelevanceFilter,
    parse_simulation,
    simulation_params,
)
from breakglass.testing import FakeTransport

VAULT = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
ATTACK = "0x" + "33" * 20
EOA = "0x" + "44" * 20
SENDER = "0x" + "55" * 20
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TRANSFER: dict[str, Any] = {
    "type": "event",
    "name": "Transfer",
    "inputs": [
        {"name": "from", "type": "address", "indexed": True},
        {"name": "to", "type": "address", "indexed": True},
        {"name": "value", "type": "uint256", "indexed": False},
    ],
}
BALANCE_OF: dict[str, Any] = {
    "type": "function",
    "name": "balanceOf",
    "inputs": [{"name": "who", "type": "address"}],
    "outputs": [{"name": "", "type": "uint256"}],
    "stateMutability": "view",
}
CONTRACTS = {"token": (TOKEN, [TRANSFER, BALANCE_OF]), "vault": (VAULT, [])}


class FakeNode:
    """The vault's token balance; a pending tx's input is the amount it takes out of the vault."""

    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.nonce = 0
        self.head = 7
        self.code = {TOKEN, VAULT, ATTACK}
        self.simulations = 0
        self.code_lookups = 0

    def __call__(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getCode":
            self.code_lookups += 1
            return "0x6080" if params[0].lower() in self.code else "0x"
        if method == "eth_getTransactionCount":
            return hex(self.nonce)
        if method == "eth_blockNumber":
            return hex(self.head)
        assert method == "eth_simulateV1"
        self.simulations += 1
        calls = params[0]["blockStateCalls"][0]["calls"]
        n = (len(calls) - 1) // 2
        tx = calls[n]
        taken = int(tx["input"], 16) if tx["input"] != "0x" else 0
        reverted = taken > self.balance
        after = self.balance if reverted else self.balance - taken

        def read(value: int) -> dict[str, Any]:
            return {"returnData": "0x" + encode(["uint256"], [value]).hex(), "status": "0x1", "logs": []}

        log = {
            "address": TOKEN,
            "topics": [TRANSFER_TOPIC, "0x" + "00" * 12 + VAULT[2:], "0x" + "00" * 12 + ATTACK[2:]],
            "data": "0x" + encode(["uint256"], [taken]).hex(),
            "logIndex": "0x0",
            "transactionHash": "0x" + "ab" * 32,
            "transactionIndex": "0x0",
            "blockNumber": hex(self.head + 1),
            "blockHash": "0x" + "cd" * 32,
        }
        mine = {"returnData": "0x", "status": "0x0" if reverted else "0x1", "gasUsed": "0x5208",
                "logs": [] if reverted or not taken else [log]}  # fmt: skip
        return [
            {
                "number": hex(self.head + 1),
                "timestamp": hex(1_000 + self.head),
                "hash": "0x" + "cd" * 32,
                "baseFeePerGas": "0x7",
                "calls": [read(self.balance)] * n + [mine] + [read(after)] * n,
            }
        ]


def invariants() -> InvariantSet:
    floor = InvariantMonitor(
        id="floor",
        kind="invariant",
        severity="critical",
        labels={"market": "0"},
        calls={"held": "token.balanceOf(vault)"},
        expect="held >= 1000.0",
    )
    return InvariantSet.build([floor], CONTRACTS)


def simulator(node: FakeNode, **kwargs: Any) -> PendingSimulator:
    inv = invariants()
    flow = FlowDetector(
        FlowMonitor(
            id="drain", kind="flow", token="token", holders=["vault"], window_blocks=10, max_fraction=0.5
        ),
        CONTRACTS,
    )
    detectors: list[Detector] = [InvariantDetector(inv), flow]
    reads = list({c.key: c for d in detectors for c in d.reads()}.values())
    judge = Judge(
        detectors,
        inv,
        chain_id=31337,
        abi=AbiIndex(CONTRACTS),
        contracts={n: a for n, (a, _abi) in CONTRACTS.items()},
        reads=reads,
    )
    rpc = RpcClient([FakeTransport(node)])

    async def has_code(address: str) -> bool:
        return str(await rpc.call("eth_getCode", address, "latest")) != "0x"

    relevance = RelevanceFilter([TOKEN, VAULT], has_code, ignore=kwargs.pop("ignore", ()))
    return PendingSimulator(rpc, judge, relevance, **kwargs)


def pending(taken: int, *, to: str | None = ATTACK, nonce: int = 0, tip: int = 3, tag: int = 1) -> PendingTx:
    tx = Tx(
        hash=Hash32("0x" + f"{tag:064x}"),
        sender=Address(SENDER),
        to=Address(to) if to else None,
        value=0,
        input=taken.to_bytes(8, "big") if taken else b"",
        nonce=nonce,
        gas=100_000,
        max_fee_per_gas=50,
        max_priority_fee_per_gas=tip,
        gas_price=None,
        index=0,
    )
    return PendingTx(tx=tx, seen_at_ms=0.0)


async def test_a_pending_drain_is_flagged_at_stage_pending_with_its_fees_and_the_state_before_it() -> None:
    node = FakeNode(5_000)
    sim = simulator(node, clock=lambda: 0.002)
    verdict = await sim.judge_one(pending(4_500))
    by_monitor = {f.monitor_id: f for f in verdict.findings}
    assert set(by_monitor) == {"floor", "drain"}
    floor = by_monitor["floor"]
    assert floor.stage is FindingStage.PENDING and floor.severity is Severity.CRITICAL
    assert floor.tx_hash == pending(0).tx.hash and floor.block_hash is None and floor.block_number == 8
    assert floor.labels == {"market": "0"}
    assert floor.evidence["values"] == {"held": 500} and floor.evidence["before"] == {"held": 5_000}
    assert floor.evidence["pending_fees"] == {
        "max_fee_per_gas": 50,
        "max_priority_fee_per_gas": 3,
        "gas_price": None,
    }
    assert floor.evidence["attacker"] == SENDER  # it called a contract of its own
    assert floor.evidence["simulated"]["protocol_logs"] == ["token.Transfer"]
    assert by_monitor["drain"].evidence["outflow"] == 4_500
    assert verdict.latency_ms == pytest.approx(2.0)
    assert not sim.judge.flows[0].window  # the real window never saw the simulated block


async def test_what_does_not_break_anything_or_was_broken_before_is_not_flagged() -> None:
    node = FakeNode(5_000)
    sim = simulator(node)
    assert (await sim.judge_one(pending(100, tag=1))).findings == ()
    node.balance = 900  # the floor is broken already: not this transaction's doing
    assert [f.monitor_id for f in (await sim.judge_one(pending(10, tag=2))).findings] == []
    node.balance = 5_000
    reverted = await sim.judge_one(pending(9_000, tag=3))  # reverts: changes nothing
    assert reverted.simulated and reverted.findings == ()


async def test_irrelevant_transactions_cost_at_most_one_code_lookup_per_head() -> None:
    node = FakeNode(5_000)
    sim = simulator(node, ignore=[ATTACK])
    assert (await sim.judge_one(pending(0, to=EOA, tag=1))).relevance is Relevance.NO_CODE
    assert (await sim.judge_one(pending(0, to=EOA, tag=2))).relevance is Relevance.NO_CODE
    assert node.code_lookups == 1 and node.simulations == 0
    assert (await sim.judge_one(pending(5, to=ATTACK, tag=3))).relevance is Relevance.IGNORED
    assert (await sim.judge_one(pending(5, to=TOKEN, tag=4))).relevance is Relevance.PROTOCOL
    assert (await sim.judge_one(pending(5, to=None, tag=5))).relevance is Relevance.CREATION
    sim.new_head(9)  # a new head: code may have appeared, ask again
    await sim.judge_one(pending(0, to=EOA, tag=6))
    assert node.code_lookups == 2


async def test_concurrent_lookups_of_one_address_share_one_request() -> None:
    calls = 0
    gate = asyncio.Event()

    async def lookup(address: str) -> bool:
        nonlocal calls
        calls += 1
        await gate.wait()
        return True

    relevance = RelevanceFilter([TOKEN], lookup)
    tasks = [asyncio.create_task(relevance.classify(pending(1, tag=i).tx)) for i in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert set(await asyncio.gather(*tasks)) == {Relevance.CONTRACT} and calls == 1


async def test_a_transaction_is_judged_once_and_a_replacement_paying_more_again() -> None:
    node = FakeNode(5_000)
    sim = simulator(node)
    await sim.handle(pending(4_500, tip=3, tag=1))
    await sim.handle(pending(4_500, tip=3, tag=1))  # the same hash from both watcher paths
    await sim.handle(pending(4_500, tip=2, tag=2))  # same sender and nonce, lower tip: no replacement
    await sim.handle(pending(4_500, tip=9, tag=3))  # a replacement that outbids: judged again
    await sim.drain()
    assert node.simulations == 2 and sim.stats.duplicates == 2 and sim.stats.flagged == 2


async def test_a_transaction_mined_before_its_simulation_is_not_judged_twice() -> None:
    node = FakeNode(5_000)
    node.nonce = 1  # the sender's nonce moved past the tx: the state simulated on already holds it
    verdict = await simulator(node).judge_one(pending(4_500, nonce=0))
    assert verdict.relevance is Relevance.INCLUDED and verdict.findings == ()


async def test_findings_are_published_for_the_responder() -> None:
    published: list[Any] = []

    class Bus:
        async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
            published.append((topic, message))

    sim = simulator(FakeNode(5_000), bus=Bus())
    await sim.judge_one(pending(4_500))
    assert {topic for topic, _ in published} == {"findings"} and len(published) == 2


def test_the_request_reads_around_the_transaction_and_a_malformed_answer_is_refused() -> None:
    tx = pending(5).tx
    inv = invariants()
    (body, block) = simulation_params(tx, inv.calls())
    calls = body["blockStateCalls"][0]["calls"]
    assert block == "latest" and body["validation"] is False and len(calls) == 3
    assert calls[0] == calls[2] and calls[0]["to"] == TOKEN
    assert (
        calls[1]["from"] == SENDER and calls[1]["maxPriorityFeePerGas"] == "0x3" and calls[1]["to"] == ATTACK
    )
    held = decode(["address"], bytes.fromhex(calls[0]["input"][10:]))[0]
    assert held.lower() == VAULT
    with pytest.raises(ChainDataError):
        parse_simulation([{"calls": []}], 1)
    with pytest.raises(ChainDataError):
        parse_simulation({"not": "a list"}, 1)
