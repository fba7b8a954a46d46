"""ABI decoding of logs, inputs and outputs; ``contract.function(args)`` parsing for view calls."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode

from breakglass.detect.abi import AbiIndex, EventAbi, find_function
from breakglass.detect.reads import parse_call
from breakglass.domain import Address, Hash32, Log
from breakglass.errors import DetectionError

VAULT = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
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
RESERVES: dict[str, Any] = {
    "type": "function",
    "name": "reserves",
    "inputs": [],
    "outputs": [{"name": "usd", "type": "uint256"}, {"name": "", "type": "uint256"}],
    "stateMutability": "view",
}
CONTRACTS = {"token": (TOKEN, [TRANSFER, BALANCE_OF, RESERVES]), "vault": (VAULT, [])}


def word(address: str) -> Hash32:
    return Hash32("0x" + "00" * 12 + address[2:])


def transfer_log(value: int) -> Log:
    event = EventAbi.of(TRANSFER)
    return Log(
        Address(TOKEN),
        (Hash32(event.topic0), word(VAULT), word(TOKEN)),
        encode(["uint256"], [value]),
        0,
        Hash32("0x" + "aa" * 32),
        0,
        1,
        Hash32("0x" + "bb" * 32),
    )


def test_a_log_of_a_known_contract_decodes_by_topic_and_address() -> None:
    index = AbiIndex(CONTRACTS)
    decoded = index.decode_log(transfer_log(5))
    assert decoded is not None
    event, args = decoded
    assert event.name == "Transfer" and args == {"from": VAULT, "to": TOKEN, "value": 5}


def test_a_log_that_does_not_fit_its_event_is_skipped_not_raised() -> None:
    broken = transfer_log(5)
    broken = Log(broken.address, broken.topics[:2], broken.data, 0, broken.tx_hash, 0, 1, broken.block_hash)
    assert AbiIndex(CONTRACTS).decode_log(broken) is None


def test_view_calls_parse_contract_names_as_addresses() -> None:
    call = parse_call("token.balanceOf(vault)", CONTRACTS, "m")
    assert call.key == "token.balanceOf(vault)" and call.address == TOKEN
    assert call.calldata == find_function([BALANCE_OF], "balanceOf").selector + encode(["address"], [VAULT])  # type: ignore[union-attr]
    assert call.decode(encode(["uint256"], [7])) == 7


def test_several_outputs_decode_by_name_or_position() -> None:
    call = parse_call("token.reserves()", CONTRACTS, "m")
    assert call.decode(encode(["uint256", "uint256"], [1, 2])) == {"usd": 1, "_1": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope.balanceOf(vault)", "unknown contract 'nope'"),
        ("token.balanceOff(vault)", "no function 'balanceOff'"),
        ("token.balanceOf()", "takes 1 argument"),
        ("token balanceOf", "is not 'contract.function(args)'"),
    ],
)
def test_bad_calls_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(DetectionError) as info:
        parse_call(text, CONTRACTS, "inv")
    assert message in str(info.value) and info.value.monitor_id == "inv"
