"""ReorgWatch: which landed transactions a new head shows orphaned, judged by block hash, once per head."""

from __future__ import annotations

from typing import Any

import pytest

from breakglass.chain.rpc import RpcClient
from breakglass.errors import RpcError
from breakglass.respond.reorgs import Landed, ReorgWatch
from breakglass.testing import FakeTransport


class Chain:
    """Canonical block hashes by number; a missing number is a block this node does not have."""

    def __init__(self, hashes: dict[int, str]) -> None:
        self.hashes = hashes
        self.lookups: list[int] = []

    def __call__(self, method: str, params: list[Any]) -> Any:
        assert method == "eth_getBlockByNumber"
        number = int(params[0], 16)
        self.lookups.append(number)
        block_hash = self.hashes.get(number)
        return None if block_hash is None else {"number": hex(number), "hash": block_hash}


def landed(key: str, number: int, block_hash: str, nonce: int = 0) -> Landed[str]:
    return Landed(key, "0x" + key * 64, nonce, number, block_hash, item=key)


def watch_over(chain: Chain, depth: int = 64) -> ReorgWatch[str]:
    return ReorgWatch(RpcClient([FakeTransport(chain)], max_rounds=1), depth=depth)


async def test_a_transaction_whose_block_is_still_canonical_is_not_orphaned() -> None:
    chain = Chain({10: "0xa"})
    watch = watch_over(chain)
    watch.add(landed("1", 10, "0xa"))
    assert await watch.orphaned(12, "0xhead12") == []
    assert "1" in watch


async def test_a_changed_block_hash_at_its_height_orphans_it_and_forgets_it() -> None:
    chain = Chain({10: "0xb"})
    watch = watch_over(chain)
    watch.add(landed("1", 10, "0xa"))
    [gone] = await watch.orphaned(12, "0xhead12")
    assert gone.key == "1" and gone.item == "1"
    assert "1" not in watch and len(watch) == 0


async def test_a_node_without_the_block_says_nothing_and_the_next_head_checks_again() -> None:
    chain = Chain({})
    watch = watch_over(chain)
    watch.add(landed("1", 10, "0xa"))
    assert await watch.orphaned(12, "0xhead12") == []
    chain.hashes[10] = "0xb"
    assert [g.key for g in await watch.orphaned(13, "0xhead13")] == ["1"]


async def test_a_head_without_a_reorg_costs_one_lookup_however_many_transactions_are_watched() -> None:
    chain = Chain({n: f"0x{n}" for n in range(10, 20)})
    watch = watch_over(chain)
    for n in range(10, 20):
        watch.add(landed(str(n), n, f"0x{n}", nonce=n))
    assert await watch.orphaned(21, "0xhead21") == []
    assert chain.lookups == [19]  # the highest still canonical vouches for every block below it
    await watch.orphaned(21, "0xhead21")  # same head: nothing asked
    assert chain.lookups == [19]
    await watch.orphaned(21, "0xother21")  # same height, another hash (a reorg at the head): asked again
    assert chain.lookups == [19, 19]


async def test_the_walk_goes_down_while_blocks_differ_and_stops_at_the_first_canonical_one() -> None:
    chain = Chain({10: "0xa", 11: "0xc", 12: "0xnew12", 13: "0xnew13"})
    watch = watch_over(chain)
    for n, block_hash in [(10, "0xa"), (11, "0xc"), (12, "0xold12"), (13, "0xold13")]:
        watch.add(landed(str(n), n, block_hash, nonce=n))
    assert [g.key for g in await watch.orphaned(14, "0xhead14")] == ["12", "13"]
    assert chain.lookups == [13, 12, 11]
    assert len(watch) == 2


async def test_orphaned_transactions_come_back_lowest_nonce_first() -> None:
    chain = Chain({10: "0xb", 11: "0xd"})
    watch = watch_over(chain)
    watch.add(landed("2", 11, "0xc", nonce=7))
    watch.add(landed("1", 10, "0xa", nonce=6))
    assert [g.nonce for g in await watch.orphaned(12, "0xhead")] == [6, 7]


async def test_transactions_deeper_than_depth_are_forgotten_unchecked() -> None:
    chain = Chain({10: "0xb"})
    watch = watch_over(chain, depth=5)
    watch.add(landed("1", 10, "0xa"))
    assert await watch.orphaned(16, "0xhead16") == []
    assert chain.lookups == [] and len(watch) == 0


async def test_a_lookup_failing_midway_loses_nothing_and_the_same_head_is_checked_again() -> None:
    chain = Chain({10: "0xb"})
    calls = {"n": 0}

    def flaky(method: str, params: list[Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            return FakeTransport.error(-32000, "internal error")
        return chain(method, params)

    watch: ReorgWatch[str] = ReorgWatch(RpcClient([FakeTransport(flaky)], max_rounds=1), depth=64)
    watch.add(landed("1", 10, "0xa"))
    watch.add(landed("2", 11, "0xc", nonce=1))
    with pytest.raises(RpcError):
        await watch.orphaned(12, "0xhead")
    assert len(watch) == 2
    assert [g.key for g in await watch.orphaned(12, "0xhead")] == ["1"]
