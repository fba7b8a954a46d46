"""The direct one-word log decoders give exactly what eth_abi gives, and refuse what it refuses."""

from __future__ import annotations

import msgspec
import pytest
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from hypothesis import given, settings
from hypothesis import strategies as st

from breakglass.detect.abi import EventAbi, _word_decoder
from breakglass.domain import Address, Hash32, Log

TYPES = [
    "address",
    "bool",
    "uint8",
    "uint64",
    "uint256",
    "int8",
    "int128",
    "int256",
    "bytes1",
    "bytes4",
    "bytes32",
]

# words that stress the padding rules: small values, all-ones, sign-extended negatives, random
WORDS = st.one_of(
    st.integers(0, 300).map(lambda v: v.to_bytes(32, "big")),
    st.integers(-300, -1).map(lambda v: v.to_bytes(32, "big", signed=True)),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=1, max_size=31).map(lambda b: b.ljust(32, b"\0")),
    st.binary(min_size=20, max_size=20).map(lambda b: b.rjust(32, b"\0")),
)


@settings(max_examples=400, deadline=None)
@given(typ=st.sampled_from(TYPES), word=WORDS)
def test_each_word_decoder_agrees_with_eth_abi(typ: str, word: bytes) -> None:
    decoder = _word_decoder(typ)
    assert decoder is not None
    try:
        expected = decode([typ], word)[0]
    except DecodingError:
        with pytest.raises(ValueError):
            decoder(word)
        return
    assert decoder(word) == expected


@pytest.mark.parametrize("typ", ["string", "bytes", "uint256[]", "(uint256,address)", "uint7", "bytes33"])
def test_other_types_are_left_to_eth_abi(typ: str) -> None:
    assert _word_decoder(typ) is None


def test_an_event_decodes_the_same_on_both_paths() -> None:
    entry = {
        "type": "event",
        "name": "Moved",
        "inputs": [
            {"name": "who", "type": "address", "indexed": True},
            {"name": "amount", "type": "uint256", "indexed": False},
            {"name": "delta", "type": "int256", "indexed": False},
            {"name": "note", "type": "string", "indexed": False},
        ],
    }
    slow = EventAbi.of(entry)
    assert slow._fast_data is None  # a string in the data: the general path
    fast_entry = {**entry, "inputs": entry["inputs"][:3]}
    fast = EventAbi.of(fast_entry)
    assert fast._fast_topics is not None and fast._fast_data is not None
    who = "0x" + "00" * 12 + "ab" * 20
    log = Log(
        address=Address("0x" + "11" * 20),
        topics=(Hash32(fast.topic0), Hash32(who)),
        data=(5).to_bytes(32, "big") + (-7).to_bytes(32, "big", signed=True),
        log_index=0,
        tx_hash=Hash32("0x" + "22" * 32),
        tx_index=0,
        block_number=1,
        block_hash=Hash32("0x" + "33" * 32),
    )
    assert fast.decode(log) == {"who": "0x" + "ab" * 20, "amount": 5, "delta": -7}
    general = EventAbi.of(fast_entry)
    object.__setattr__(general, "_fast_data", None)
    assert general.decode(log) == fast.decode(log)
    assert fast.decode(msgspec.structs.replace(log, data=log.data[:40])) is None  # too short: not this event
