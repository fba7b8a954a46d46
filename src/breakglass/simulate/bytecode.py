"""What a contract's runtime bytecode tells without running it: the selectors its dispatcher accepts
and the protocol addresses it carries.

Solidity and Vyper dispatch on the call's first four bytes with ``PUSHn <selector> EQ`` (solc puts a
``DUP`` in between in some versions, and pushes a selector with leading zero bytes in fewer than four).
The walk skips push data, so bytes inside a push are never read as opcodes; the metadata at the end
may yield a stray "selector", which costs one simulation, nothing more. A selector the dispatcher
reaches otherwise (a jump table, a proxy's ``DELEGATECALL`` to an implementation) is not seen.

A protocol address is looked for anywhere in the code: a ``PUSH20`` constant and a Solidity
``immutable`` (its 32-byte word is written into the runtime code at deployment) both carry it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MAX_SELECTORS", "embedded_addresses", "selectors"]

MAX_SELECTORS = 64
"""Selectors kept per contract: more is a contract too large to probe within a budget anyway."""

_PUSH1, _PUSH32, _EQ = 0x60, 0x7F, 0x14
_DUP1, _DUP16, _SWAP1, _SWAP16 = 0x80, 0x8F, 0x90, 0x9F


def selectors(code: bytes, limit: int = MAX_SELECTORS) -> tuple[bytes, ...]:
    """The 4-byte selectors ``code``'s dispatcher compares the call data with, in code order."""
    out: dict[bytes, None] = {}
    i, n = 0, len(code)
    while i < n and len(out) < limit:
        op = code[i]
        if _PUSH1 <= op <= _PUSH32:
            width = op - _PUSH1 + 1
            value = code[i + 1 : i + 1 + width]
            j = i + 1 + width
            if width <= 4 and len(value) == width:
                # the comparison follows the push, or follows one stack shuffle
                nxt = code[j] if j < n else None
                if nxt is not None and (_DUP1 <= nxt <= _DUP16 or _SWAP1 <= nxt <= _SWAP16):
                    nxt = code[j + 1] if j + 1 < n else None
                if nxt == _EQ:
                    selector = value.rjust(4, b"\0")
                    if selector != b"\0\0\0\0" and width >= 3:  # small constants are not selectors
                        out.setdefault(selector, None)
            i = j
            continue
        i += 1
    return tuple(out)


def embedded_addresses(code: bytes, addresses: Iterable[str]) -> list[str]:
    """Those of ``addresses`` (0x hex) whose 20 bytes appear in ``code``, lowercased."""
    return [a.lower() for a in addresses if bytes.fromhex(a[2:]) in code]
