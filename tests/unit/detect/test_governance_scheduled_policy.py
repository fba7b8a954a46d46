"""A timelock's scheduled call judged by the responder's policy too (issue 14): a call not in
``scheduled_allow`` carries the policy's verdict (offline; ``needs chain`` when a bound is read on
chain), and one the policy refuses as a loosening is raised one severity higher."""

from __future__ import annotations

from typing import Any

from eth_abi import encode

from breakglass.config.deployment import ContractRecord
from breakglass.config.monitors import GovernanceMonitor, ScheduledCall
from breakglass.config.playbooks import PolicyConfig
from breakglass.detect.abi import EventAbi, FunctionAbi
from breakglass.detect.base import BlockContext, DecodedLog
from breakglass.detect.governance import GovernanceDetector
from breakglass.domain import Address, Block, Finding, Hash32, Log, Receipt, Severity, Tx
from breakglass.respond.policy import Policy

TIMELOCK = "0x" + "71" * 20
POOL = "0x" + "b0" * 20
PROPOSER = "0x" + "a1" * 20


def _function(name: str, *inputs: str, view: bool = False) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [{"name": "", "type": "uint256"}] if view else [],
        "stateMutability": "view" if view else "nonpayable",
    }


POOL_ABI = [
    _function("setPoolPause", "bool"),
    _function("setMaxLeverage", "uint256"),
    _function("setCap", "uint256"),
    _function("cap", view=True),
    _function("unpause"),
    _function("setFee", "uint256"),
    _function("setOracle", "address"),
]
SCHEDULED = EventAbi.of(
    {
        "type": "event",
        "name": "CallScheduled",
        "inputs": [
            {"name": "id", "type": "bytes32", "indexed": True},
            {"name": "index", "type": "uint256", "indexed": True},
            {"name": "target", "type": "address", "indexed": False},
            {"name": "value", "type": "uint256", "indexed": False},
            {"name": "data", "type": "bytes", "indexed": False},
            {"name": "predecessor", "type": "bytes32", "indexed": False},
            {"name": "delay", "type": "uint256", "indexed": False},
        ],
    }
)
POLICY = PolicyConfig.model_validate(
    {
        "allow": [
            {"contract": "pool", "function": "setPoolPause", "args": {"a0": True}},
            {"contract": "pool", "function": "setMaxLeverage", "args": {"a0": {"min": 1, "max": 20}}},
            {"contract": "pool", "function": "setCap",
             "args": {"a0": {"tighter": "lower", "current": "pool.cap()"}}},
        ]
    }
)  # fmt: skip


def calldata(name: str, *args: Any) -> bytes:
    function = FunctionAbi.of(next(e for e in POOL_ABI if e["name"] == name))
    return function.selector + encode(list(function.input_types), list(args))


def scheduled(data: bytes, number: int = 1) -> BlockContext:
    tx_hash = Hash32(f"0x{number:064x}")
    log = Log(Address(TIMELOCK), (Hash32(SCHEDULED.topic0),), b"", 0, tx_hash, 0, number, tx_hash)
    receipt = Receipt(tx_hash, 1, 50_000, 1, None, (log,))
    tx = Tx(tx_hash, Address(PROPOSER), Address(TIMELOCK), 0, b"", 0, 1, None, None, 1, 0, receipt)
    block = Block(number, tx_hash, Hash32(f"0x{number - 1:064x}"), 12 * number, 1, (tx,))
    args = {"id": b"\x01" * 32, "index": 0, "target": POOL, "value": 0, "data": data,
            "predecessor": b"\x00" * 32, "delay": 3600}  # fmt: skip
    logs = [DecodedLog(log, "timelock", SCHEDULED, args, tx)]
    return BlockContext(chain_id=1, block=block, reads={}, logs=logs, contracts={})


def detector(*, policy: bool = True) -> GovernanceDetector:
    records = {"pool": ContractRecord(POOL, POOL_ABI), "timelock": ContractRecord(TIMELOCK, [])}
    compiled = Policy.compile(POLICY, records, lambda: 0.0) if policy else None
    cfg = GovernanceMonitor(
        id="gov", kind="governance", contracts=["timelock"], severity="high",
        scheduled_allow=[ScheduledCall(contract="pool", function="setOracle")],
    )  # fmt: skip
    known = {n: (r.address, r.abi) for n, r in records.items()}
    return GovernanceDetector(cfg, {"timelock": TIMELOCK}, known=known, policy=compiled)


def verdict_of(scheduled: dict[str, Any]) -> tuple[object, ...]:
    return scheduled["policy"], scheduled.get("policy_rule"), scheduled["loosening"]


def one(gov: GovernanceDetector, data: bytes) -> Finding:
    [finding] = gov.on_block(scheduled(data))
    return finding


def test_a_lever_switched_the_safe_way_is_allowed_by_the_policy() -> None:
    finding = one(detector(), calldata("setPoolPause", True))
    assert finding.evidence["scheduled"]["policy"] == "allowed"
    assert finding.evidence["scheduled"]["args"] == {"a0": True}
    assert not finding.evidence["scheduled"]["loosening"] and finding.severity == Severity.HIGH


def test_a_lever_switched_off_is_a_loosening_one_severity_higher() -> None:
    finding = one(detector(), calldata("setPoolPause", False))
    verdict = finding.evidence["scheduled"]
    assert verdict_of(verdict) == ("refused", "arguments", True)
    assert finding.severity == Severity.CRITICAL and "loosening pool.setPoolPause" in finding.title


def test_a_limit_above_its_max_and_an_unpause_are_loosenings() -> None:
    assert one(detector(), calldata("setMaxLeverage", 50)).evidence["scheduled"]["loosening"]
    unpause = one(detector(), calldata("unpause")).evidence["scheduled"]
    assert (unpause["policy_rule"], unpause["loosening"]) == ("loosening", True)


def test_a_bound_read_on_chain_is_marked_needs_chain() -> None:
    verdict = one(detector(), calldata("setCap", 10)).evidence["scheduled"]
    assert verdict["policy"] == "needs chain" and "pool.cap()" in verdict["policy_reason"]
    assert not verdict["loosening"]


def test_a_call_outside_the_policy_is_refused_but_no_loosening() -> None:
    gov = detector()
    assert gov.on_block(scheduled(calldata("setOracle", POOL))) == []  # in scheduled_allow: silent
    fee = one(gov, calldata("setFee", 5))
    verdict = fee.evidence["scheduled"]
    assert (verdict["policy"], verdict["policy_rule"], verdict["loosening"]) == (
        "refused",
        "allowlist",
        False,
    )
    assert fee.severity == Severity.HIGH
    garbled = one(gov, calldata("setFee", 5)[:4] + b"\xff").evidence["scheduled"]
    assert (garbled["policy"], garbled["policy_reason"]) == ("unknown", "undecodable arguments")


def test_without_a_policy_the_loosening_patterns_still_apply() -> None:
    gov = detector(policy=False)
    assert one(gov, calldata("unpause")).severity == Severity.CRITICAL
    verdict = one(gov, calldata("setPoolPause", True)).evidence["scheduled"]
    assert (verdict["policy"], verdict["policy_rule"], verdict["loosening"]) == (
        "refused",
        "allowlist",
        False,
    )
