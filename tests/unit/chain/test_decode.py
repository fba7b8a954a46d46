"""Raw JSON-RPC answers decode into domain types; bad answers name the method and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breakglass.chain.decode import decode_block, decode_window
from breakglass.errors import ChainDataError

H = "0x" + "11" * 32
H2 = "0x" + "22" * 32
A = "0x" + "ab" * 20


def raw_block(**over: Any) -> dict[str, Any]:
    tx = {
        "hash": H2,
        "from": A,
        "to": A,
        "value": "0x5",
        "input": "0xa9059cbb",
        "nonce": "0x0",
        "gas": "0x5208",
        "gasPrice": "0x1",
        "transactionIndex": "0x0",
    }
    block = {
        "number": "0x10",
        "hash": H,
        "parentHash": H2,
        "timestamp": "0x64",
        "baseFeePerGas": "0x7",
        "transactions": [tx],
    }
    block.update(over)
    return block


def raw_receipts() -> list[dict[str, Any]]:
    log = {
        "address": A,
        "topics": [H],
        "data": "0x01",
        "logIndex": "0x0",
        "transactionHash": H2,
        "transactionIndex": "0x0",
        "blockNumber": "0x10",
        "blockHash": H,
    }
    return [
        {
            "transactionHash": H2,
            "status": "0x1",
            "gasUsed": "0x5208",
            "effectiveGasPrice": "0x1",
            "contractAddress": None,
            "logs": [log],
        }
    ]


def test_a_block_decodes_with_receipts_joined_to_transactions() -> None:
    block = decode_block(raw_block(), raw_receipts())  # type: ignore[arg-type]
    assert block.number == 16 and block.timestamp == 100 and block.base_fee == 7
    tx = block.transactions[0]
    assert tx.selector == bytes.fromhex("a9059cbb") and tx.value == 5
    assert tx.receipt is not None and tx.receipt.status == 1
    assert block.logs[0].data == b"\x01" and block.logs[0].address.lower() == A and block.logs[0].address != A


def test_a_missing_field_names_method_and_field() -> None:
    raw = raw_block()
    del raw["parentHash"]
    with pytest.raises(ChainDataError) as info:
        decode_block(raw, raw_receipts())  # type: ignore[arg-type]
    assert info.value.method == "eth_getBlockByNumber" and info.value.field == "parentHash"


def test_a_malformed_nested_value_names_its_path() -> None:
    receipts = raw_receipts()
    receipts[0]["logs"][0]["topics"] = ["0x12"]
    with pytest.raises(ChainDataError) as info:
        decode_block(raw_block(), receipts)  # type: ignore[arg-type]
    assert info.value.method == "eth_getBlockReceipts" and info.value.field == "[0].logs[0].topics[0]"


def test_a_transaction_without_its_receipt_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(ChainDataError) as info:
        decode_block(raw_block(), [])  # type: ignore[arg-type]
    assert "no receipt" in str(info.value)


def test_a_missing_block_is_a_chain_data_error() -> None:
    with pytest.raises(ChainDataError):
        decode_block(None, None)


def window_body(first_id: int, answers: list[Any]) -> bytes:
    return json.dumps(
        [{"jsonrpc": "2.0", "id": first_id + i, "result": a} for i, a in enumerate(answers)]
    ).encode()


def test_a_raw_window_answer_decodes_into_its_blocks_in_order() -> None:
    body = window_body(7, [raw_block(), raw_receipts(), raw_block(number="0x11", transactions=[]), []])
    blocks = decode_window([16, 17], 7, body)
    assert blocks is not None
    assert [b.number for b in blocks] == [16, 17]
    assert blocks[0] == decode_block(raw_block(), raw_receipts())  # type: ignore[arg-type]
    assert blocks[1].quiet


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"message": "Unauthorized"}',
        window_body(8, [raw_block(), raw_receipts()]),  # ids not the ones asked
        window_body(7, [raw_block(), raw_receipts(), raw_block(number="0x11")]),  # one answer short
        window_body(7, [None, raw_receipts()]),  # no such block (yet)
        window_body(7, [raw_block(number="0x12"), raw_receipts()]),  # another block than asked
        window_body(7, [raw_block(hash="0x12"), raw_receipts()]),  # a field that does not decode
        json.dumps(
            [
                {"jsonrpc": "2.0", "id": 7, "result": raw_block()},
                {"jsonrpc": "2.0", "id": 8, "error": {"code": -32601, "message": "no such method"}},
            ]
        ).encode(),
    ],
)
def test_a_raw_window_answer_that_is_not_the_usual_one_is_declined(body: bytes) -> None:
    # the caller fetches the window the ordinary way, which retries or reports precisely
    assert decode_window([16], 7, body) is None


def test_a_raw_window_decodes_exactly_as_the_ordinary_path_quiet_blocks_and_withdrawals_included() -> None:
    quiet = raw_block(number="0x11", transactions=[], withdrawals=[{"index": "0x0"}, {"index": "0x1"}])
    legacy = raw_block(number="0x12", baseFeePerGas=None)
    answers = [raw_block(), raw_receipts(), quiet, [], legacy, raw_receipts()]
    blocks = decode_window([16, 17, 18], 7, window_body(7, answers))
    assert blocks == [
        decode_block(raw_block(), raw_receipts()),  # type: ignore[arg-type]
        decode_block(quiet, []),  # type: ignore[arg-type]
        decode_block(legacy, raw_receipts()),  # type: ignore[arg-type]
    ]
    assert blocks[1].withdrawals == 2 and not blocks[1].quiet and blocks[2].base_fee is None


@pytest.mark.parametrize(
    "over",
    [
        {"transactions": [H2]},  # hashes, not full transactions
        {"timestamp": 100},  # not a hex quantity
        {"parentHash": None},
    ],
)
def test_a_raw_window_with_a_field_that_does_not_decode_is_declined(over: dict[str, Any]) -> None:
    assert decode_window([16], 7, window_body(7, [raw_block(**over), raw_receipts()])) is None
