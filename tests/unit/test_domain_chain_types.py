"""The chain data types (msgspec structs) behave as the frozen dataclasses they replaced: immutable,
equal and hashed by value, pickled whole (the backfill worker), carried by the bus codec."""

from __future__ import annotations

import pickle

import msgspec
import pytest

from breakglass.bus import codec
from breakglass.domain import Address, Block, Hash32, Log, Receipt, Tx

H = Hash32("0x" + "11" * 32)
A = Address("0x5FbDB2315678afecb367f032d93F642f64180aa3")


def block() -> Block:
    log = Log(A, (H, H), b"\x01", 0, H, 0, 16, H)
    receipt = Receipt(H, 1, 21_000, 7, None, (log,))
    tx = Tx(H, A, A, 5, b"\xa9\x05\x9c\xbb", 0, 21_000, None, None, 7, 0, receipt)
    return Block(16, H, H, 100, 7, (tx,), withdrawals=2)


def test_a_block_is_immutable() -> None:
    with pytest.raises(AttributeError):
        block().number = 17  # type: ignore[misc]


def test_blocks_of_equal_fields_are_equal_and_hash_alike() -> None:
    assert block() == block() and hash(block()) == hash(block())
    assert msgspec.structs.replace(block(), number=17) != block()
    assert {block().transactions[0]: 1}[block().transactions[0]] == 1


def test_a_block_pickles_whole() -> None:
    assert pickle.loads(pickle.dumps(block())) == block()


def test_a_block_travels_through_the_bus_codec_with_bytes_as_hex() -> None:
    payload = codec.encode(block())
    assert b'"input":"0xa9059cbb"' in payload and b'"removed":false' in payload
    assert codec.decode(payload) == block()


def test_a_block_reads_as_before() -> None:
    b = block()
    assert b.logs == b.transactions[0].receipt.logs  # type: ignore[union-attr]
    assert not b.quiet and b.transactions[0].selector == b"\xa9\x05\x9c\xbb"
    assert repr(b).startswith("Block(number=16, hash='0x1111")
