"""Playbooks: matching, argument templating checked against the ABI, idempotency keys, config errors."""

from __future__ import annotations

import pytest
from eth_abi.abi import decode
from eth_utils.crypto import keccak

from breakglass.config.playbooks import PlaybookConfig
from breakglass.devnet.manifest import ContractRecord
from breakglass.domain import Finding, Severity
from breakglass.errors import ConfigError
from breakglass.respond import PlaybookBook
from breakglass.respond.playbook import CallStep, FailedStep, MessageStep

VENUE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ABI = [
    {"type": "function", "name": "pause", "inputs": [], "outputs": [], "stateMutability": "nonpayable"},
    {
        "type": "function",
        "name": "pauseMarket",
        "inputs": [{"name": "id", "type": "uint256"}],
        "outputs": [],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "blockAccount",
        "inputs": [{"name": "a", "type": "address"}],
        "outputs": [],
        "stateMutability": "nonpayable",
    },
    {
        "type": "function",
        "name": "paused",
        "inputs": [],
        "outputs": [{"name": "", "type": "bool"}],
        "stateMutability": "view",
    },
]
CONTRACTS = {"venue": ContractRecord(VENUE, ABI)}
ATTACKER = "0x000000000000000000000000000000000000a77a"


def book(*actions: dict[str, object], match: dict[str, object] | None = None) -> PlaybookBook:
    config = PlaybookConfig.model_validate(
        {"id": "pb", "match": match or {"monitors": ["m"]}, "actions": actions}
    )
    return PlaybookBook.compile([config], CONTRACTS, "test.yaml")


def finding(**kw: object) -> Finding:
    base: dict[str, object] = {
        "monitor_id": "m",
        "severity": Severity.HIGH,
        "chain_id": 1,
        "block_number": 5,
        "title": "t",
        "labels": {"market": "7"},
        "evidence": {"attacker": ATTACKER},
    }
    return Finding(**(base | kw))  # type: ignore[arg-type]


def call(id_: str, function: str, *args: object, **extra: object) -> dict[str, object]:
    return {"kind": "call", "id": id_, "contract": "venue", "function": function, "args": list(args), **extra}


def test_arguments_are_templated_from_labels_and_evidence_and_abi_encoded() -> None:
    b = book(
        call("block", "blockAccount", "{evidence.attacker}"), call("mkt", "pauseMarket", "{labels.market}")
    )
    [p] = b.matching(finding())
    block, market = b.steps(p, finding())
    assert isinstance(block, CallStep) and isinstance(market, CallStep)
    assert decode(["address"], block.call.data[4:]) == (ATTACKER,)
    assert market.call.args == (7,) and market.call.target == "venue.pauseMarket(7)"
    assert market.call.data[:4] == keccak(text="pauseMarket(uint256)")[:4] and len(market.call.data) == 36


@pytest.mark.parametrize(
    ("kw", "matches"),
    [
        ({}, True),
        ({"monitor_id": "other"}, False),
        ({"severity": Severity.MEDIUM}, False),
        ({"labels": {}}, False),
    ],
)
def test_matching_by_monitor_severity_and_labels(kw: dict[str, object], matches: bool) -> None:
    b = book(call("p", "pause"), match={"monitors": ["m"], "min_severity": "high", "labels": {"market": "*"}})
    assert bool(b.matching(finding(**kw))) is matches


def test_a_value_that_does_not_fit_the_abi_fails_that_step_only() -> None:
    b = book(call("block", "blockAccount", "{evidence.attacker}"), call("p", "pause"))
    [p] = b.matching(finding())
    bad = finding(evidence={"attacker": "not-an-address"})
    failed, pause = b.steps(p, bad)
    assert isinstance(failed, FailedStep) and "not a valid address" in failed.error
    assert isinstance(pause, CallStep)
    missing, _ = b.steps(p, finding(evidence={}))
    assert isinstance(missing, FailedStep) and "has no 'attacker'" in missing.error


def test_an_optional_call_is_skipped_when_the_finding_lacks_its_field_and_fails_only_on_a_bad_value() -> None:
    b = book(call("block", "blockAccount", "{evidence.attacker}", optional=True), call("p", "pause"))
    [p] = b.matching(finding())
    [pause] = b.steps(p, finding(evidence={}))  # an invariant's finding: no attacker known
    assert isinstance(pause, CallStep) and pause.action == "p"
    block, _ = b.steps(p, finding())  # a simulated transaction's: its sender
    assert isinstance(block, CallStep) and decode(["address"], block.call.data[4:]) == (ATTACKER,)
    bad, _ = b.steps(p, finding(evidence={"attacker": "not-an-address"}))  # present but wrong: a failure
    assert isinstance(bad, FailedStep) and "not a valid address" in bad.error


def test_keys_are_per_finding_by_default_and_per_target_when_asked() -> None:
    b = book(
        call("mkt", "pauseMarket", "{labels.market}"),
        call("p", "pause", once_per="target"),
        {"kind": "notify", "id": "n", "message": "market {labels.market} paused"},
    )
    [p] = b.matching(finding())
    one = b.steps(p, finding(tx_hash="0x" + "11" * 32))
    two = b.steps(p, finding(tx_hash="0x" + "22" * 32))
    assert one[0].key != two[0].key  # a new attack transaction: the targeted step runs again
    assert one[1].key == two[1].key and one[1].key.startswith("target/")  # the global pause: once
    assert one[0].key == b.steps(p, finding(tx_hash="0x" + "11" * 32))[0].key  # stable across runs
    assert isinstance(one[2], MessageStep) and one[2].text == "market 7 paused"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (call("x", "nope"), "has no function 'nope'"),
        (call("x", "pauseMarket"), "takes 1 argument"),
        (call("x", "pauseMarket", "seven"), "not a valid uint256"),
        (call("x", "paused"), "view function"),
    ],
)
def test_calls_that_cannot_match_the_abi_are_config_errors_at_load(
    action: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        book(action)
    [issue] = err.value.issues
    assert (
        message in issue.message
        and issue.path.startswith("playbooks[0].actions[0]")
        and issue.file == "test.yaml"
    )
