"""A window's answer parsed into typed structs (``decode_window``) gives exactly the blocks the
ordinary path (``decode_block`` on the parsed JSON) gives, or declines: never other values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.chain.decode import decode_block, decode_window
from breakglass.domain import Block
from breakglass.errors import ChainDataError

ADDRESSES = [
    "0x" + "ab" * 20,
    "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "0x5FBDB2315678AFECB367F032D93F642F64180AA3",
]
quantities = st.integers(0, 2**256 - 1).map(hex)
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()) | st.sampled_from(
    ["0x" + "AB" * 32, "0x" + "0" * 64]
)
addresses = st.sampled_from(ADDRESSES)
data = st.binary(max_size=40).map(lambda b: "0x" + b.hex())
JUNK = [None, 7, "", "0x", "0xzz", "12", "0X1f", "0x1_0", "0x1f ", "0x" + "11" * 31, [], {}, True]


def optional(draw: st.DrawFn, into: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
    """An optional field: absent, null or a value."""
    choice = draw(st.sampled_from(["absent", "null", "value"]))
    if choice != "absent":
        into[key] = None if choice == "null" else draw(values)


@st.composite
def window(draw: st.DrawFn) -> tuple[list[int], list[Any]]:
    """Well-formed answers of a window of one to four blocks, each with up to three transactions."""
    numbers: list[int] = []
    first = draw(st.integers(0, 10**6))
    answers: list[Any] = []
    for number in range(first, first + draw(st.integers(1, 4))):
        numbers.append(number)
        block_hash = draw(hashes)
        txs: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        for index in range(draw(st.integers(0, 3))):
            tx_hash = draw(hashes)
            tx: dict[str, Any] = {
                "hash": tx_hash,
                "from": draw(addresses),
                "value": draw(quantities),
                "input": draw(data),
                "nonce": draw(quantities),
                "gas": draw(quantities),
                "v": "0x1",  # fields a Tx does not keep
                "accessList": [],
            }
            optional(draw, tx, "to", addresses)
            for key in ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice", "transactionIndex"):
                optional(draw, tx, key, quantities)
            txs.append(tx)
            logs = [
                {
                    "address": draw(addresses),
                    "topics": draw(st.lists(hashes, max_size=4)),
                    "data": draw(data),
                    "logIndex": draw(quantities),
                    "transactionHash": tx_hash,
                    "transactionIndex": hex(index),
                    "blockNumber": hex(number),
                    "blockHash": block_hash,
                }
                for _ in range(draw(st.integers(0, 3)))
            ]
            receipt: dict[str, Any] = {
                "transactionHash": tx_hash.upper().replace("0X", "0x") if draw(st.booleans()) else tx_hash,
                "status": draw(st.sampled_from(["0x1", "0x0"])),
                "gasUsed": draw(quantities),
                "logs": logs,
                "logsBloom": "0x" + "00" * 256,
            }
            for log in logs:
                optional(draw, log, "removed", st.booleans())
            optional(draw, receipt, "effectiveGasPrice", quantities)
            optional(draw, receipt, "contractAddress", addresses)
            receipts.append(receipt)
        block: dict[str, Any] = {
            "number": hex(number),
            "hash": block_hash,
            "parentHash": draw(hashes),
            "timestamp": draw(quantities),
            "transactions": txs,
            "logsBloom": "0x" + "00" * 256,
        }
        optional(draw, block, "baseFeePerGas", quantities)
        optional(draw, block, "withdrawals", st.lists(st.just({"index": "0x0"}), max_size=2))
        answers += [block, draw(st.permutations(receipts))]
    return numbers, answers


def body_of(first_id: int, answers: list[Any]) -> bytes:
    return json.dumps(
        [{"jsonrpc": "2.0", "id": first_id + i, "result": a} for i, a in enumerate(answers)]
    ).encode()


def ordinary(answers: list[Any]) -> list[Block]:
    return [decode_block(answers[i], answers[i + 1]) for i in range(0, len(answers), 2)]


@settings(max_examples=150, deadline=None)
@given(window())
def test_a_well_formed_window_decodes_exactly_as_the_ordinary_path(case: tuple[list[int], list[Any]]) -> None:
    numbers, answers = case
    assert decode_window(numbers, 3, body_of(3, answers)) == ordinary(answers)


def _targets(answers: list[Any]) -> list[dict[str, Any]]:
    """Every object of the answers whose fields a mutation may change."""
    found: list[dict[str, Any]] = []
    for i in range(0, len(answers), 2):
        found.append(answers[i])
        found += answers[i]["transactions"]
        for receipt in answers[i + 1]:
            found.append(receipt)
            found += receipt["logs"]
    return found


@settings(max_examples=250, deadline=None)
@given(window(), st.data())
def test_a_window_with_a_field_changed_decodes_as_the_ordinary_path_or_is_declined(
    case: tuple[list[int], list[Any]], data: st.DataObject
) -> None:
    numbers, answers = case
    target = data.draw(st.sampled_from(_targets(answers)))
    key = data.draw(st.sampled_from(sorted(target)))
    if data.draw(st.booleans()):
        del target[key]
    else:
        target[key] = data.draw(st.sampled_from(JUNK))
    try:
        expected: list[Block] | None = ordinary(answers)
    except ChainDataError:
        expected = None
    got = decode_window(numbers, 3, body_of(3, answers))
    assert got is None or got == expected
    if expected is None:
        assert got is None
