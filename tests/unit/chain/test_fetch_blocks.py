"""A window is fetched in one round trip and parsed straight into blocks; an answer that is not the
usual one is asked again the ordinary way, which reports it or learns from it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from breakglass.chain.decode import decode_block
from breakglass.chain.follower import fetch_blocks
from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError
from breakglass.testing import FakeTransport

H = "0x" + "11" * 32


def quiet_block(number: int) -> dict[str, Any]:
    return {
        "number": hex(number),
        "hash": "0x" + f"{number:064x}",
        "parentHash": "0x" + f"{number - 1:064x}",
        "timestamp": hex(1000 + number),
        "baseFeePerGas": "0x7",
        "logsBloom": "0x" + "00" * 256,
        "transactions": [],
    }


class RawFake(FakeTransport):
    """A fake endpoint that can also hand over its answers undecoded, as ``HttpTransport`` does."""

    async def send_raw(self, payload: list[dict[str, Any]]) -> bytes:
        return json.dumps(await self.send(payload)).encode()


def node(method: str, params: list[Any]) -> Any:
    if method == "eth_getBlockByNumber":
        return quiet_block(int(params[0], 16))
    if method == "eth_getBlockReceipts":
        return []
    raise AssertionError(method)


async def test_a_usual_window_is_one_round_trip_and_the_same_blocks_as_the_ordinary_path() -> None:
    fake = RawFake(node)
    blocks = await fetch_blocks(RpcClient([fake]), [5, 6, 7])
    assert len(fake.sent) == 1
    assert blocks == [decode_block(quiet_block(n), []) for n in (5, 6, 7)]  # type: ignore[arg-type]


async def test_an_unusual_answer_is_asked_again_the_ordinary_way_which_reports_it() -> None:
    def no_receipts(method: str, params: list[Any]) -> Any:
        if method == "eth_getBlockReceipts":
            return FakeTransport.error(-32601, "method not found")
        return node(method, params)

    fake = RawFake(no_receipts)
    with pytest.raises(RpcError) as info:
        await fetch_blocks(RpcClient([fake]), [5, 6])
    assert info.value.code == -32601 and len(fake.sent) == 2  # the follower learns from this error
    assert len(await fetch_blocks(RpcClient([fake]), [5, 6], receipts_by_block=False)) == 2
