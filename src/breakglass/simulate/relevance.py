"""Which pending transactions can touch the protocol: cheap tests first, one cached code lookup at most.

Most of a public mempool is irrelevant to one protocol (transfers between accounts, other protocols'
traffic); judging it must cost next to nothing. The rules, in order:

- a call to a protocol contract: relevant;
- a call to a contract listed as unrelated (``mempool.ignore``): skipped;
- a deployment: relevant when ``simulate_creations`` (an exploit can run in a constructor);
- anything else is relevant only if its target has code. An exploit usually calls the attacker's own
  contract, which calls the protocol internally, so the target address says nothing by itself; but a
  call to an account without code (a plain transfer) runs no code at all.

Code lookups are cached for the current head only (code can appear at an address: a deployment, an
EIP-7702 delegation), and concurrent lookups of one address share one request.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable

from breakglass.domain import Tx

__all__ = ["Relevance", "RelevanceFilter"]

CodeLookup = Callable[[str], Awaitable[bool]]
"""address -> whether it has code at the latest block"""


class Relevance(enum.StrEnum):
    PROTOCOL = "protocol"
    """calls a protocol contract directly"""
    CONTRACT = "contract"
    """calls some other contract, which may call the protocol"""
    CREATION = "creation"
    IGNORED = "ignored"
    """calls a contract configured as unrelated"""
    NO_CODE = "no-code"
    """a transfer or call to an account without code: runs nothing"""
    INCLUDED = "included"
    """already mined by the time it was simulated: nothing left to judge"""

    @property
    def simulate(self) -> bool:
        return self in (Relevance.PROTOCOL, Relevance.CONTRACT, Relevance.CREATION)


class RelevanceFilter:
    """Classifies pending transactions; ``new_head(n)`` drops the code cache of the previous head."""

    def __init__(
        self,
        protocol: Iterable[str],
        code_lookup: CodeLookup,
        *,
        ignore: Iterable[str] = (),
        simulate_creations: bool = True,
    ) -> None:
        self.protocol = {a.lower() for a in protocol}
        self.ignore = {a.lower() for a in ignore} - self.protocol
        self.simulate_creations = simulate_creations
        self._lookup = code_lookup
        self._head = -1
        self._code: dict[str, asyncio.Future[bool]] = {}
        self.lookups = 0

    def new_head(self, number: int) -> None:
        if number != self._head:
            self._head = number
            self._code = {}

    async def classify(self, tx: Tx) -> Relevance:
        if tx.to is None:
            return Relevance.CREATION if self.simulate_creations else Relevance.IGNORED
        to = tx.to.lower()
        if to in self.protocol:
            return Relevance.PROTOCOL
        if to in self.ignore:
            return Relevance.IGNORED
        return Relevance.CONTRACT if await self._has_code(to) else Relevance.NO_CODE

    async def _has_code(self, address: str) -> bool:
        found = self._code.get(address)
        if found is None:
            found = self._code[address] = asyncio.get_running_loop().create_future()
            self.lookups += 1
            try:
                found.set_result(await self._lookup(address))
            except BaseException as exc:
                self._code.pop(address, None)  # a failure is not cached: the next tx asks again
                found.set_exception(exc)
                found.exception()  # retrieved here, so an unawaited copy is never reported
                raise
        return await asyncio.shield(found)
