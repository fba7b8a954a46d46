"""Follow-ups (``simulate/followups.py``): compiled against the ABIs with each problem at its key; one
call per log naming the probed contract; a follow-up that reverts does not fail the probe."""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak

from breakglass.config.attack import FollowUpConfig
from breakglass.domain import Address, Hash32, Log
from breakglass.errors import ConfigIssue
from breakglass.simulate.followups import FollowUps, compile_follow_ups
from breakglass.simulate.probes import ProbeCall, parse_probe, probe_params

MARKET = "0x" + "11" * 20
KEEPER = "0x" + "22" * 20
PROBED = "0x" + "33" * 20
ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "executeOrder",
        "inputs": [{"name": "id", "type": "uint256"}],
        "outputs": [],
    },
    {
        "type": "event",
        "name": "OrderCreated",
        "anonymous": False,
        "inputs": [
            {"name": "orderId", "type": "uint256", "indexed": True},
            {"name": "account", "type": "address", "indexed": True},
        ],
    },
]
TOPIC = "0x" + keccak(text="OrderCreated(uint256,address)").hex()


def config(**changes: Any) -> FollowUpConfig:
    data: dict[str, Any] = {
        "id": "keeper",
        "contract": "market",
        "function": "executeOrder",
        "from": KEEPER,
        "for_each": "market.OrderCreated",
        "args": ["{event.orderId}"],
    }
    return FollowUpConfig.model_validate({**data, **changes})


def locate(path: tuple[str | int, ...], message: str) -> ConfigIssue:
    return ConfigIssue("f.yaml", None, ".".join(map(str, path)), message)


def order_log(order_id: int, account: str) -> Log:
    return Log(
        address=Address(MARKET),
        topics=(Hash32(TOPIC), Hash32("0x" + f"{order_id:064x}"), Hash32("0x" + account[2:].rjust(64, "0"))),
        data=b"",
        log_index=0,
        tx_hash=Hash32("0x" + "00" * 32),
        tx_index=0,
        block_number=1,
        block_hash=Hash32("0x" + "00" * 32),
    )


def test_each_problem_is_located_at_its_key() -> None:
    contracts = {"market": (MARKET, ABI)}
    broken = [
        config(function="executeOrdr"),
        config(for_each="market.OrderCreatd"),
        config(args=["{event.orderid}"]),
        config(args=["{evnt.orderId}"]),
        config(args=[1, 2]),
        config(for_each=None),
    ]
    _, issues = compile_follow_ups(broken, contracts, locate)
    where = {i.path: i.message for i in issues}
    assert "did you mean 'executeOrder'" in where["attack_simulation.follow_ups.0.function"]
    assert "did you mean 'OrderCreated'" in where["attack_simulation.follow_ups.1.for_each"]
    assert "did you mean 'orderId'" in where["attack_simulation.follow_ups.2.args.0"]
    assert "'{contract}'" in where["attack_simulation.follow_ups.3.args.0"]
    assert "takes 1 arguments" in where["attack_simulation.follow_ups.4.args"]
    assert "needs for_each" in where["attack_simulation.follow_ups.5.args.0"]
    assert len(issues) == 6


def test_one_call_per_log_naming_the_probed_contract() -> None:
    [follow], issues = compile_follow_ups([config()], {"market": (MARKET, ABI)}, locate)
    assert issues == []
    follow_ups = FollowUps([follow])
    pairs = follow_ups.from_logs(contract=PROBED, logs=[order_log(7, PROBED), order_log(8, KEEPER)])
    selector = keccak(text="executeOrder(uint256)")[:4]
    assert pairs == [(PROBED, ProbeCall(KEEPER, MARKET, selector + (7).to_bytes(32, "big")))]


def test_a_follow_up_that_reverts_does_not_fail_the_probe() -> None:
    probe = ProbeCall(PROBED, PROBED, b"\x01\x02\x03\x04")
    follow = ProbeCall(KEEPER, MARKET, b"\x05\x06\x07\x08")
    params = probe_params([probe], [], follow=[follow])
    assert [c["from"] for c in params[0]["blockStateCalls"][0]["calls"]] == [PROBED, KEEPER]
    answer = [
        {
            "number": "0x2",
            "timestamp": "0x10",
            "calls": [
                {"status": "0x1", "returnData": "0x", "gasUsed": "0x5208", "logs": []},
                {"status": "0x0", "returnData": "0x", "gasUsed": "0x5208", "logs": []},
            ],
        }
    ]
    sim, outcomes = parse_probe(answer, 0, 1, 1)
    assert sim.tx.status == 1 and [o.ok for o in outcomes] == [True]
