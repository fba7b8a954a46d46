"""Attack-contract simulation apart from the node: selectors from bytecode, creations from traces, and
the simulator's probing, proof, budget and cache over a fake ``eth_simulateV1``."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode
from prometheus_client import REGISTRY

from breakglass.chain.rpc import RpcClient
from breakglass.config.attack import AttackSimulationConfig
from breakglass.config.monitors import InvariantMonitor
from breakglass.detect.abi import AbiIndex
from breakglass.detect.invariants import InvariantDetector, InvariantSet
from breakglass.domain import Address, Block, FindingStage, Hash32, Receipt, Severity, Tx
from breakglass.simulate import AttackSimulator, Judge
from breakglass.simulate.bytecode import embedded_addresses, selectors
from breakglass.simulate.discover import CreationFinder, creations_from_call_tree, creations_from_parity
from breakglass.simulate.probes import FRESH_CALLER, argument_sets, derived_sets
from breakglass.testing import FakeTransport

TOKEN = "0x" + "22" * 20
VAULT = "0x" + "11" * 20
DEPLOYER = "0x" + "44" * 20
FACTORY = "0x" + "66" * 20
DRAIN, PREPARE, STRIKE, GETTER, ROUNDS = (
    bytes.fromhex(h) for h in ("deadbeef", "11111111", "22222222", "8da5cb5b", "33333333")
)
BALANCE_OF: dict[str, Any] = {
    "type": "function",
    "name": "balanceOf",
    "inputs": [{"name": "who", "type": "address"}],
    "outputs": [{"name": "", "type": "uint256"}],
    "stateMutability": "view",
}
CONTRACTS = {"token": (TOKEN, [BALANCE_OF]), "vault": (VAULT, [])}


def dispatcher(*sels: bytes, embed: str | None = None) -> bytes:
    """Runtime code shaped like solc's: selector load, ``DUP1 PUSH4 sel EQ PUSH2 dest JUMPI`` each."""
    code = bytes.fromhex("60003560e01c")
    for sel in sels:
        code += b"\x80\x63" + sel + b"\x14\x61\x00\x40\x57"
    if embed:
        code += b"\x73" + bytes.fromhex(embed[2:])  # PUSH20 address
    return code + b"\x00"


def test_selectors_are_read_from_the_dispatcher_and_push_data_is_never_an_opcode() -> None:
    code = dispatcher(DRAIN, GETTER)
    assert selectors(code) == (DRAIN, GETTER)
    # a selector with a leading zero byte is pushed in three bytes; an EQ inside push data is data
    short = bytes.fromhex("8062fdd58e14") + bytes.fromhex("7f" + "14" * 32)
    assert selectors(short) == (bytes.fromhex("00fdd58e"),)
    assert selectors(bytes.fromhex("6001146002")) == ()  # small constants compared are no selectors


def test_embedded_protocol_addresses_are_found_anywhere_in_the_code() -> None:
    code = dispatcher(DRAIN, embed=VAULT) + bytes(12) + bytes.fromhex(TOKEN[2:])  # an immutable's word
    assert embedded_addresses(code, [TOKEN, VAULT, "0x" + "99" * 20]) == [TOKEN, VAULT]


def test_creations_are_read_from_parity_traces_and_call_trees_without_failed_frames() -> None:
    parity = [
        {"type": "call", "action": {"from": DEPLOYER}, "transactionHash": "0xa"},
        {
            "type": "create",
            "action": {"from": FACTORY},
            "result": {"address": "0xC1"},
            "transactionHash": "0xa",
        },
        {"type": "create", "action": {"from": FACTORY}, "error": "Reverted", "transactionHash": "0xa"},
    ]
    assert creations_from_parity(parity) == [("0xc1", FACTORY, "0xa")]
    tree = [
        {
            "txHash": "0xb",
            "result": {
                "type": "CALL",
                "from": DEPLOYER,
                "to": FACTORY,
                "calls": [
                    {"type": "CREATE2", "from": FACTORY, "to": "0xC2"},
                    {
                        "type": "CALL",
                        "error": "execution reverted",
                        "calls": [{"type": "CREATE", "to": "0xC3"}],
                    },
                ],
            },
        }
    ]
    assert creations_from_call_tree(tree) == [("0xc2", FACTORY, "0xb")]


def block_with(*txs: Tx, number: int = 9) -> Block:
    return Block(number, Hash32("0x" + "bb" * 32), Hash32("0x" + "aa" * 32), 1_000, 7, txs)


def tx(tag: int, *, to: str | None = FACTORY, created: str | None = None, logs: tuple[Any, ...] = ()) -> Tx:
    receipt = Receipt(Hash32(f"0x{tag:064x}"), 1, 50_000, 1, Address(created) if created else None, logs)
    return Tx(Hash32(f"0x{tag:064x}"), Address(DEPLOYER), Address(to) if to else None, 0, b"", tag, 100_000,
              None, None, 1, 0, receipt)  # fmt: skip


async def test_the_finder_falls_back_from_traces_to_receipts_and_a_code_diff() -> None:
    child = "0x" + "c4" * 20

    def node(method: str, params: list[Any]) -> Any:
        if method in ("trace_block", "debug_traceBlockByNumber"):
            return FakeTransport.error(-32601, "method not found")
        assert method == "eth_getCode"
        return "0x" if params[1] == hex(8) and params[0] != FACTORY else "0x6080"  # the factory is older

    log = type("L", (), {"address": child})()
    finder = CreationFinder(RpcClient([FakeTransport(node)]))
    found = await finder.created(block_with(tx(1, to=None, created="0x" + "c5" * 20), tx(2, logs=(log,))))
    assert finder.method == "receipts"
    assert {(c.address, c.origin) for c in found} == {("0x" + "c5" * 20, DEPLOYER), (child, DEPLOYER)}


class FakeNode:
    """The vault's token balance, 5,000. Contracts: ``DRAIN`` from the deployer takes 4,500;
    ``STRIKE`` after ``PREPARE`` (both from the deployer) takes 4,500 too; ``GETTER`` returns a word;
    ``ROUNDS(address, size, margin, n)`` from the deployer takes 4,500 when the margin is at most what
    the contract holds of ``TOKEN`` (``holding``), the size at least 20 times it and ``n`` above 1."""

    def __init__(self, creations: list[tuple[str, bytes]], holding: int = 0) -> None:
        self.creations = creations
        self.code = dict(creations)
        self.simulations = 0
        self.holding = holding
        self.calls: list[bytes] = []

    def __call__(self, method: str, params: list[Any]) -> Any:
        if method == "trace_block":
            return [
                {"type": "create", "action": {"from": FACTORY}, "result": {"address": a},
                 "transactionHash": f"0x{1:064x}"}
                for a, _code in self.creations
            ]  # fmt: skip
        if method == "eth_getCode":
            return "0x" + self.code.get(params[0], b"").hex()
        if method == "eth_call":  # balanceOf(contract): the token answers, the vault reverts
            assert params[0]["data"][:10] == "0x70a08231"
            if params[0]["to"] != TOKEN:
                return FakeTransport.error(3, "execution reverted")
            return "0x" + self.holding.to_bytes(32, "big").hex()
        assert method == "eth_simulateV1"
        self.simulations += 1
        calls = params[0]["blockStateCalls"][0]["calls"]
        n = sum(1 for c in calls if "from" not in c) // 2
        mine = calls[n : len(calls) - n]
        taken, prepared, outcomes = 0, False, []
        for call in mine:
            data = bytes.fromhex(call["input"][2:])
            owner = call["from"] == DEPLOYER
            self.calls.append(data)
            words = [int.from_bytes(data[i : i + 32], "big") for i in range(4, len(data), 32)]
            ok = (
                (owner and data[:4] in (DRAIN, PREPARE))
                or (
                    owner
                    and data[:4] == ROUNDS
                    and len(words) == 4
                    and 0 < words[2] <= self.holding
                    and words[1] >= 20 * words[2]
                    and words[3] > 1
                )
                or data[:4] == GETTER
                or (data[:4] == STRIKE and prepared)
            )
            prepared = prepared or (ok and data[:4] == PREPARE)
            taken += 4_500 if ok and data[:4] in (DRAIN, STRIKE, ROUNDS) else 0
            returned = "0x" + (bytes(32).hex() if data[:4] == GETTER else "")
            outcomes.append(
                {"status": "0x1" if ok else "0x0", "returnData": returned, "gasUsed": "0x5208", "logs": []}
            )

        def read(value: int) -> dict[str, Any]:
            return {"returnData": "0x" + encode(["uint256"], [value]).hex(), "status": "0x1", "logs": []}

        block = {"number": "0xa", "timestamp": hex(1_010), "hash": "0x" + "cd" * 32, "baseFeePerGas": "0x7"}
        return [{**block, "calls": [read(5_000)] * n + outcomes + [read(5_000 - taken)] * n}]


def attack_simulator(node: FakeNode, **settings: Any) -> AttackSimulator:
    floor = InvariantMonitor(
        id="floor", kind="invariant", severity="critical", calls={"held": "token.balanceOf(vault)"},
        expect="held >= 1000.0",
    )  # fmt: skip
    inv = InvariantSet.build([floor], CONTRACTS)
    detectors = [InvariantDetector(inv)]
    reads = list({c.key: c for d in detectors for c in d.reads()}.values())
    contracts = {n: a for n, (a, _abi) in CONTRACTS.items()}
    judge = Judge(detectors, inv, chain_id=31337, abi=AbiIndex(CONTRACTS), contracts=contracts, reads=reads)
    config = AttackSimulationConfig(enabled=True, **settings)
    return AttackSimulator(RpcClient([FakeTransport(node)]), judge, config, protocol=contracts)


async def test_a_contract_whose_call_breaks_a_critical_invariant_is_a_setup_proven_finding() -> None:
    attack = "0x" + "a1" * 20
    sim = attack_simulator(FakeNode([(attack, dispatcher(GETTER, DRAIN, embed=VAULT))]))
    [finding] = await sim.examine(block_with(tx(1)))
    assert finding.stage is FindingStage.SETUP_PROVEN and finding.severity is Severity.CRITICAL
    assert finding.monitor_id == "floor" and finding.tx_hash is None
    assert finding.evidence["contract"] == attack == finding.evidence["attacker"]
    assert finding.evidence["deployer"] == DEPLOYER and finding.evidence["creator"] == FACTORY
    assert finding.evidence["calls"] == [
        {"from": DEPLOYER, "to": attack, "selector": "0xdeadbeef", "input": "0xdeadbeef", "value": 0}
    ]
    assert finding.evidence["values"] == {"held": 500} and finding.evidence["before"] == {"held": 5_000}
    assert "@" not in finding.breach  # a proof, not a breach predicted to begin in a block
    again = attack_simulator(FakeNode([(attack, dispatcher(GETTER, DRAIN, embed=VAULT))]))
    assert [f.fingerprint for f in await again.examine(block_with(tx(1)))] == [finding.fingerprint]


async def test_an_arm_then_fire_contract_is_proven_by_a_two_call_sequence() -> None:
    attack = "0x" + "a2" * 20
    node = FakeNode([(attack, dispatcher(STRIKE, PREPARE))])
    [finding] = await attack_simulator(node).examine(block_with(tx(1)))
    assert [c["selector"] for c in finding.evidence["calls"]] == ["0x11111111", "0x22222222"]


async def test_a_quiet_contract_is_probed_within_budget_and_its_code_cached() -> None:
    quiet = "0x" + "a3" * 20
    code = dispatcher(GETTER, STRIKE, embed=VAULT)
    node = FakeNode([(quiet, code)])
    sim = attack_simulator(node, max_simulations_per_contract=10)
    assert await sim.examine(block_with(tx(1))) == []
    assert node.simulations == 10 and sim.stats.simulations == 10
    twin = "0x" + "a4" * 20  # the same code deployed again: not probed at its creation
    node.creations, node.code[twin] = [(twin, code)], code
    assert await sim.examine(block_with(tx(2), number=10)) == []
    assert node.simulations == 10 and sim.stats.skipped_cached == 1
    # touched later (a call to it): probed again
    assert await sim.examine(block_with(tx(3, to=twin), number=11)) == [] and node.simulations == 20


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_flood_of_deployments_is_cut_to_the_per_block_budget_best_first() -> None:
    skipped = sample("breakglass_attack_simulation_skipped_total", what="contract")
    proven = sample("breakglass_attack_simulation_probes_total", outcome="proven", reason="created")
    flood = [("0x" + f"{i:040x}", dispatcher(GETTER, bytes([i, 1, 2, 3]))) for i in range(1, 9)]
    reaching = ("0x" + "a5" * 20, dispatcher(GETTER, DRAIN, embed=VAULT))
    node = FakeNode([*flood, reaching])
    sim = attack_simulator(node, max_contracts_per_block=2, max_simulations_per_block=40)
    [finding] = await sim.examine(block_with(tx(1)))
    assert finding.evidence["contract"] == reaching[0]  # the one embedding a protocol address first
    assert sim.stats.skipped_budget == 7 and node.simulations <= 40
    assert sample("breakglass_attack_simulation_skipped_total", what="contract") == skipped + 7
    assert (
        sample("breakglass_attack_simulation_probes_total", outcome="proven", reason="created") == proven + 1
    )


def test_arguments_are_guessed_cheapest_first() -> None:
    sets = argument_sets([VAULT])
    assert sets[0] == b"" and sets[1] == bytes(128)
    assert sets[2][12:32] == bytes.fromhex(VAULT[2:]) and sets[3][:32] == (32).to_bytes(32, "big")
    assert FRESH_CALLER.startswith("0x") and len(FRESH_CALLER) == 42


def test_sets_derived_from_holdings_take_a_margin_a_leveraged_size_and_a_loop_count() -> None:
    assert derived_sets([VAULT], []) == [] and derived_sets([VAULT], [0, 1]) == []
    sets = derived_sets([VAULT, TOKEN], [1_000], leverage=(8, 40), counts=(16,))
    words = [[int.from_bytes(s[i : i + 32], "big") for i in range(0, 128, 32)] for s in sets]
    assert words[:4] == [
        [int(VAULT, 16), 4_000, 500, 16],  # half the holding as margin, 8x it as size
        [int(VAULT, 16), 20_000, 500, 16],
        [int(VAULT, 16), 500, 4_000, 16],  # the other order
        [int(VAULT, 16), 500, 20_000, 16],
    ]
    assert [w[0] for w in words[4:]] == [int(TOKEN, 16)] * 4  # then the next address
    assert len(derived_sets([VAULT], [1_000, 1_000, 50])) == 8  # one series per distinct holding


async def test_a_contract_is_proven_with_arguments_derived_from_what_it_holds() -> None:
    """``ROUNDS`` needs a market, a size 20x a margin it can pay and a loop count: no guess reaches it
    while the contract holds nothing; holding 1,000 of the token, the derived sets do, from the deployer
    alone (an owner-only contract), before the protocol addresses are tried alone."""
    attack = "0x" + "a7" * 20
    empty = FakeNode([(attack, dispatcher(GETTER, ROUNDS, embed=TOKEN))])
    assert await attack_simulator(empty).examine(block_with(tx(1))) == []
    assert not any(len(c) == 132 and any(c[36:100]) for c in empty.calls)  # no amount was derived

    node = FakeNode([(attack, dispatcher(GETTER, ROUNDS, embed=TOKEN))], holding=1_000)
    [finding] = await attack_simulator(node).examine(block_with(tx(1)))
    [call] = finding.evidence["calls"]
    assert call["selector"] == "0x33333333" and call["from"] == DEPLOYER
    assert call["input"][10:74] == VAULT[2:].rjust(64, "0")  # the protocol address it does not embed
    assert int(call["input"][74:138], 16) == 20_000 and int(call["input"][138:202], 16) == 500
    assert node.simulations < empty.simulations


@pytest.mark.parametrize("reach", ["protocol", "tainted"])
async def test_reach_leaves_out_contracts_that_name_no_protocol_address(reach: str) -> None:
    node = FakeNode([("0x" + "a6" * 20, dispatcher(DRAIN))])
    assert await attack_simulator(node, reach=reach).examine(block_with(tx(1))) == []
    assert node.simulations == 0


async def test_a_token_balance_mapping_is_found_once_and_funds_the_probed_contract() -> None:
    from breakglass.simulate.funding import BalanceSlots, balance_slot

    asked: list[int] = []

    def node(method: str, params: list[Any]) -> Any:
        assert method == "eth_call"
        asked.append(1)
        call, _block, overrides = params
        holder = "0x" + call["data"][-40:]
        [(slot, value)] = overrides[call["to"]]["stateDiff"].items()
        hit = slot == balance_slot(holder, 3)  # an OpenZeppelin-like token with _balances at slot 3
        return value if hit else "0x" + bytes(32).hex()

    slots = BalanceSlots(RpcClient([FakeTransport(node)]), {TOKEN: 5_000})
    await slots.find()
    await slots.find()  # remembered: not looked for again
    assert slots.slots == {TOKEN: (3, False)} and len(asked) == 64
    holder = "0x" + "a7" * 20
    assert slots.overrides(holder) == {
        TOKEN: {"stateDiff": {balance_slot(holder, 3): "0x" + (5_000).to_bytes(32, "big").hex()}}
    }


async def test_a_node_without_eth_simulate_stops_the_probing_once_and_says_so() -> None:
    attack = "0x" + "a8" * 20
    node = FakeNode([(attack, dispatcher(DRAIN))])
    fake = node.__call__

    def refusing(method: str, params: list[Any]) -> Any:
        if method == "eth_simulateV1":
            node.simulations += 1
            return FakeTransport.error(-32601, "the method eth_simulateV1 does not exist")
        return fake(method, params)

    sim = attack_simulator(node)
    sim.rpc = sim.finder.rpc = RpcClient([FakeTransport(refusing)])
    sim.prober.batcher.rpc = sim.rpc
    assert await sim.examine(block_with(tx(1))) == []
    assert sim.prober.unsupported and node.simulations > 0
    asked = node.simulations
    assert await sim.examine(block_with(tx(2), number=10)) == [] and node.simulations == asked


async def test_a_probe_is_given_up_when_a_newer_block_touches_its_contract_and_runs_again_on_it() -> None:
    """Probes run on the latest state: once a newer block changed the contract (armed it, say), the
    rest of a probe of the older state is wasted time. The blocks that queued meanwhile are examined
    together, and the contract probed once more."""
    quiet = "0x" + "a6" * 20
    node = FakeNode([(quiet, dispatcher(GETTER, STRIKE, embed=VAULT))])
    sim = attack_simulator(node, concurrency=1)
    touching = block_with(tx(2, to=quiet), number=10)
    inner = node.__call__

    def touch_during_the_probe(method: str, params: list[Any]) -> Any:
        if method == "eth_simulateV1" and node.simulations == 1:
            sim.on_block(touching)  # the block path hands a newer block over mid-probe
        return inner(method, params)

    sim.rpc = sim.prober.batcher.rpc = RpcClient([FakeTransport(touch_during_the_probe)])
    assert await sim.examine(block_with(tx(1))) == []
    assert sim.stats.superseded == 1 and node.simulations < 160
    assert sim.watched[quiet].probes == 1  # it counts against max_reprobes (bounded work)
    assert list(sim._blocks) == [touching]
    spent = node.simulations
    assert await sim.examine(*sim._blocks) == [] and node.simulations > spent  # probed again, whole
    assert sim.stats.superseded == 1 and sim.watched[quiet].probes == 2


async def test_the_leverage_multiples_tried_are_the_configured_ones() -> None:
    """``attack_simulation.leverage``: ``ROUNDS`` needs a size at least 20x its margin. A protocol whose
    caps are 10x (8 tried) proves nothing with it; one configured with 25 proves it with a 25x size."""
    attack = "0x" + "a8" * 20
    low = FakeNode([(attack, dispatcher(GETTER, ROUNDS, embed=TOKEN))], holding=1_000)
    assert await attack_simulator(low, leverage=[8]).examine(block_with(tx(1))) == []
    node = FakeNode([(attack, dispatcher(GETTER, ROUNDS, embed=TOKEN))], holding=1_000)
    [finding] = await attack_simulator(node, leverage=[25]).examine(block_with(tx(1)))
    [call] = finding.evidence["calls"]
    assert int(call["input"][74:138], 16) == 12_500 and int(call["input"][138:202], 16) == 500


def test_the_leverage_list_defaults_to_8_and_40_and_is_checked() -> None:
    assert AttackSimulationConfig().leverage == [8, 40]
    for bad in ([], [0], [8, "ten"], list(range(1, 20))):
        with pytest.raises(ValueError, match="leverage"):
            AttackSimulationConfig(leverage=bad)


def test_a_bad_leverage_is_a_config_error_at_its_line_and_path(tmp_path: Any) -> None:
    from breakglass.config import load_config
    from breakglass.errors import ConfigError

    path = tmp_path / "breakglass.yaml"
    path.write_text("protocol: x\nattack_simulation:\n  leverage: [8, 0]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert (
        "breakglass.yaml:3 attack_simulation.leverage[1]: Input should be greater than or equal to 1"
        in str(info.value)
    )
