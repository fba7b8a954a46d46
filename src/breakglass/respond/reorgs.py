"""Landed guardian transactions near the head, re-checked when the head changes: a reorg may orphan them.

A receipt is not the end of a containment transaction: if its block is orphaned, the pause may be gone
from the canonical chain (dropped, or back in some mempool). ``ReorgWatch`` remembers each landed
transaction (its block number and hash) until it is ``depth`` blocks deep, and on every new head (a new
hash, so a same-height reorg counts too) compares the canonical block at that height with the one it
landed in, highest first, down to the first one still canonical (it vouches for the blocks below it).
The relayer reopens what comes back orphaned (``GuardianRelayer.poll``).

The block hash, not a missing receipt, is the signal: with several endpoints a lagging node has no
receipt yet for a transaction that is perfectly canonical. A node that does not have the block at all
(behind the head it reported) says nothing either way: the check is repeated at the next head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from breakglass.respond.rpc import Rpc

__all__ = ["DEFAULT_REORG_DEPTH", "Landed", "ReorgWatch"]

DEFAULT_REORG_DEPTH = 64
"""Blocks after which a landed transaction is no longer re-checked (two epochs of Ethereum mainnet)."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Landed(Generic[T]):
    """One transaction of ``key`` that a receipt placed in ``block_number`` / ``block_hash``."""

    key: str
    tx_hash: str
    nonce: int
    block_number: int
    block_hash: str
    item: T
    """What the caller needs to reopen the key (the relayer's in-flight record)."""


class ReorgWatch(Generic[T]):
    """Remembers landed transactions; ``orphaned(head, head_hash)`` returns those a reorg took out."""

    def __init__(self, rpc: Rpc, *, depth: int = DEFAULT_REORG_DEPTH) -> None:
        self._rpc = rpc
        self.depth = depth
        self._landed: dict[str, Landed[T]] = {}
        self._checked = ""
        self.checks = 0
        """Block lookups done, for tests and benchmarks."""

    def add(self, landed: Landed[T]) -> None:
        self._landed[landed.key] = landed

    def __contains__(self, key: object) -> bool:
        return key in self._landed

    def __len__(self) -> int:
        return len(self._landed)

    async def orphaned(self, head: int, head_hash: str) -> list[Landed[T]]:
        """Landed transactions whose block is no longer canonical, lowest nonce first, and forgotten.

        Checked once per head hash; those deeper than ``depth`` below ``head`` are forgotten unchecked.
        """
        if not self._landed or head_hash == self._checked:
            return []
        for key, landed in list(self._landed.items()):
            if head - landed.block_number > self.depth:
                del self._landed[key]
        by_height: dict[int, list[Landed[T]]] = {}
        for landed in self._landed.values():
            by_height.setdefault(landed.block_number, []).append(landed)
        gone: list[Landed[T]] = []
        # Highest first: a block whose hash still matches vouches for every block below it (each names
        # its parent), so the usual no-reorg head costs one lookup however many transactions are watched.
        for number in sorted(by_height, reverse=True):
            self.checks += 1
            block = await self._rpc.call("eth_getBlockByNumber", hex(number), False)
            if block is None:  # this node does not have it (behind): no verdict, look lower
                continue
            mismatched = [landed for landed in by_height[number] if landed.block_hash != block["hash"]]
            gone += mismatched
            if not mismatched:
                break
        # only once every lookup answered: an RPC failure loses nothing and retries at the next poll
        for landed in gone:
            del self._landed[landed.key]
        self._checked = head_hash
        return sorted(gone, key=lambda landed: landed.nonce)
