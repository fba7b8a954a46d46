"""What the coverage audit plans from a configuration, before any node: the containments (per label,
alone and per playbook), the calls it generates from an ABI, and how its report flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi.abi import decode

from breakglass.config import load_config
from breakglass.config.deployment import ContractRecord
from breakglass.config.models import Settings
from breakglass.coverage.actions import containments
from breakglass.coverage.probes import FRESH_SENDER, generated, state_changing
from breakglass.coverage.report import Attempt, ContainmentResult, CoverageReport, FunctionVerdict
from breakglass.coverage.service import audit_config
from breakglass.errors import DevnetError

GUARD = "0x00000000000000000000000000000000000000aa"
GUARDIAN = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
USER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def _fn(name: str, inputs: list[str], mutability: str = "nonpayable") -> dict[str, object]:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [],
        "stateMutability": mutability,
    }


ABI = [
    _fn("pauseMarket", ["uint256"]),
    _fn("blockAccount", ["address"]),
    _fn("withdraw", ["uint256", "address"]),
    _fn("isPaused", ["uint256"], "view"),
]
CONTRACTS = {"guard": ContractRecord(GUARD, ABI)}


def _settings(playbooks: list[dict[str, object]]) -> Settings:
    monitors = [
        {"id": f"m{m}", "kind": "event", "contract": "guard", "event": "X", "labels": {"market": str(m)}}
        for m in (0, 1)
    ]
    return Settings.model_validate({"monitors": monitors, "playbooks": playbooks})


def test_a_templated_market_is_audited_once_per_market_its_monitors_name_alone_and_as_a_playbook() -> None:
    settings = _settings(
        [
            {
                "id": "contain",
                "match": {"monitors": ["m0", "m1"], "labels": {"market": "*"}},
                "actions": [
                    {"kind": "call", "id": "block", "contract": "guard", "function": "blockAccount",
                     "args": ["{evidence.attacker}"]},
                    {"kind": "call", "id": "pause", "contract": "guard", "function": "pauseMarket",
                     "args": ["{labels.market}"]},
                    {"kind": "notify", "id": "tell", "message": "paused"},
                ],
            }
        ]
    )  # fmt: skip

    units, skipped = containments(settings, CONTRACTS, GUARDIAN, USER)

    names = [u.name for u in units]
    assert names == [
        f"guard.blockAccount({USER})",
        "guard.pauseMarket(0)",
        "guard.pauseMarket(1)",
        "contain [market=0]",
        "contain [market=1]",
    ]  # one playbook: no "all playbooks" beside it
    assert skipped == []
    assert units[0].subject == USER and units[1].subject is None
    pause = units[1].calls[0]
    assert pause.sender == GUARDIAN and decode(["uint256"], bytes.fromhex(pause.data[10:])) == (0,)
    assert [c.target for c in units[3].calls] == [f"guard.blockAccount({USER})", "guard.pauseMarket(0)"]


def test_an_argument_only_the_finding_gives_is_reported_unless_an_example_is_given() -> None:
    settings = _settings(
        [{"id": "p", "actions": [{"kind": "call", "id": "pause", "contract": "guard",
                                  "function": "pauseMarket", "args": ["{evidence.args.marketId}"]}]}]
    )  # fmt: skip

    units, skipped = containments(settings, CONTRACTS, GUARDIAN, USER)

    assert units == []
    assert skipped == [
        "p.pause: argument {evidence.args.marketId} comes from the finding; no label gives it (--evidence)"
    ]

    units, skipped = containments(settings, CONTRACTS, GUARDIAN, USER, {"args.marketId": "1"})

    assert [u.name for u in units] == ["guard.pauseMarket(1)"] and skipped == []
    assert units[0].subject is None  # an example value is no block's subject


def test_a_call_without_a_guardian_address_is_reported() -> None:
    settings = _settings(
        [{"id": "p", "actions": [{"kind": "call", "id": "pause", "contract": "guard",
                                  "function": "pauseMarket", "args": [0]}]}]
    )  # fmt: skip

    units, skipped = containments(settings, CONTRACTS, None, None)

    assert units == [] and skipped == ["p.pause: no address for guardian (give --guardian)"]


def test_generated_calls_stay_within_the_budget_and_skip_views_and_what_history_covers() -> None:
    probes = generated(CONTRACTS, {"guard.pauseMarket(uint256)"}, [USER], budget=5)

    assert {p.function for p in probes} == {"blockAccount(address)", "withdraw(uint256,address)"}
    assert sum(p.function == "withdraw(uint256,address)" for p in probes) == 5
    assert {p.sender for p in probes} == {USER, FRESH_SENDER}
    first = next(p for p in probes if p.function == "withdraw(uint256,address)" and p.sender == USER)
    assert first.args == (1, USER)  # a small amount, to the sender itself
    assert [e["name"] for e in state_changing(ABI)] == ["pauseMarket", "blockAccount", "withdraw"]


def _verdict(function: str, verdict: str, in_reach: bool) -> FunctionVerdict:
    ok = verdict != "refused"
    out = {"usd": 5} if verdict == "value-out" else {}
    return FunctionVerdict(
        function, verdict, (Attempt(f"{function} from u", "history", ok, "", out),), in_reach
    )


def test_only_value_leaving_beside_what_the_containment_refused_is_flagged() -> None:
    result = ContainmentResult(
        "pause",
        "action",
        "p",
        ("vault.pause()",),
        True,
        functions=(
            _verdict("vault.withdraw(uint256)", "refused", True),
            _verdict("vault.emergencyWithdraw(uint256)", "value-out", True),
            _verdict("other.redeem(uint256)", "value-out", False),
            _verdict("vault.poke()", "open", True),
        ),
    )
    report = CoverageReport("c.yaml", 1, 10, True, ("usd",), ("vault",), {"history": 1}, (), (), (result,))

    assert report.flagged == [("pause", "vault.emergencyWithdraw(uint256)")]
    assert report.to_json()["flagged"] == [
        {"containment": "pause", "function": "vault.emergencyWithdraw(uint256)"}
    ]
    text = report.text()
    assert "OPEN VALUE PATH: vault.emergencyWithdraw(uint256)" in text
    assert "value out, beyond its reach: other.redeem(uint256)" in text
    assert "1 value path(s) left open" in text
    assert "OPEN VALUE PATH" in report.html()


def test_a_node_that_does_not_answer_is_a_devnet_error_that_names_no_provider_key(tmp_path: Path) -> None:
    (tmp_path / "guard.json").write_text(json.dumps(ABI))
    config = tmp_path / "breakglass.yaml"
    config.write_text(
        f'contracts: [{{name: guard, address: "{GUARD}", abi: guard.json}}]\n'
        "playbooks: [{id: p, actions: [{kind: call, id: pause, contract: guard, function: pauseMarket,"
        " args: [0]}]}]\n"
    )
    key = "abcdefghijklmnopqrstuvwxyz0123456789"

    with pytest.raises(DevnetError) as caught:
        audit_config(load_config(config, environ={}), rpc=f"http://127.0.0.1:1/v2/{key}", guardian=GUARDIAN)

    assert key not in str(caught.value)


def test_a_fork_passes_the_forked_node_and_block_and_keeps_its_chain_rules() -> None:
    from breakglass.devnet.anvil import AnvilOptions

    argv = AnvilOptions(chain_id=10, fork_url="http://node:8545", fork_block=123).argv(Path("anvil"))

    assert argv[argv.index("--fork-url") + 1] == "http://node:8545"
    assert argv[argv.index("--fork-block-number") + 1] == "123"
    assert argv[argv.index("--chain-id") + 1] == "10"
    assert "--hardfork" not in argv and "--hardfork" in AnvilOptions().argv(Path("anvil"))


class _Balances:
    """A node whose balance reads answer from a dict: (method, target) -> value."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values

    def call(self, method: str, *params: object) -> object:
        raise AssertionError(method)

    def batch(self, calls: list[tuple[str, list[object]]], *, strict: bool = True) -> list[object]:
        answers: list[object] = []
        for method, params in calls:
            first = params[0]
            key = f"{method}:{first['data'][:10] if isinstance(first, dict) else first}"
            answers.append(hex(self.values[key]) if key in self.values else None)
        return answers


def test_value_out_is_a_fall_of_what_the_holders_hold_or_a_rise_of_a_minted_supply() -> None:
    from breakglass.coverage.audit import ValueScope, _Runner

    holder, token = "0x" + "11" * 20, "0x" + "22" * 20
    scope = ValueScope(tokens={"ETH": ""}, holders={"vault": holder}, minted={"susd": token})
    node = _Balances({f"eth_getBalance:{holder}": 100, "eth_call:0x18160ddd": 1_000})
    runner = _Runner(node, scope, {})
    before = runner.holdings()

    node.values.update({f"eth_getBalance:{holder}": 70, "eth_call:0x18160ddd": 1_500})
    assert runner.outflow(before, runner.holdings()) == {"ETH": 30, "susd minted": 500}

    node.values.update({f"eth_getBalance:{holder}": 130, "eth_call:0x18160ddd": 900})
    assert runner.outflow(before, runner.holdings()) == {}  # value in, supply burnt: nothing out

    del node.values["eth_call:0x18160ddd"]  # a call broke the token: unreadable, not counted
    assert runner.outflow(before, runner.holdings(strict=False)) == {}


def test_with_several_playbooks_every_call_of_every_playbook_is_audited_together_too() -> None:
    settings = _settings(
        [
            {"id": "a", "actions": [{"kind": "call", "id": "pause", "contract": "guard",
                                     "function": "pauseMarket", "args": [0]}]},
            {"id": "b", "actions": [{"kind": "call", "id": "block", "contract": "guard",
                                     "function": "blockAccount", "args": ["{evidence.attacker}"]}]},
        ]
    )  # fmt: skip

    units, _ = containments(settings, CONTRACTS, GUARDIAN, USER)

    everything = units[-1]
    assert (everything.name, everything.kind) == ("all playbooks", "all")
    assert [c.target for c in everything.calls] == ["guard.pauseMarket(0)", f"guard.blockAccount({USER})"]
    assert everything.blocked == (USER,) and everything.subject is None


def test_without_the_guardians_address_the_audit_stops_before_forking_and_says_how(tmp_path: Path) -> None:
    from breakglass.errors import ConfigError

    (tmp_path / "guard.json").write_text(json.dumps(ABI))
    config = tmp_path / "breakglass.yaml"
    config.write_text(
        'chain: {rpc: ["http://127.0.0.1:1"]}\n'
        f'contracts: [{{name: guard, address: "{GUARD}", abi: guard.json}}]\n'
        "playbooks: [{id: p, actions: [{kind: call, id: pause, contract: guard, function: pauseMarket,"
        " args: [0]}]}]\n"
    )

    with pytest.raises(ConfigError, match="--guardian"):
        audit_config(load_config(config, environ={}))
