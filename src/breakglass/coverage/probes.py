"""What the audit tries: calls to the protocol's state-changing functions as its users would send them.

First from the chain's history (the last blocks' transactions to the configured contracts, decoded
against their ABIs: real senders, real arguments, replayed as they were sent), then, for what history
does not cover, generated from the ABI within a budget: small amounts, the senders seen, the known
addresses. A generated call that reverts before any containment tells nothing and is reported as such.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from breakglass.config.deployment import ContractRecord
from breakglass.coverage.node import Node
from breakglass.respond.calls import type_of

__all__ = [
    "FRESH_SENDER",
    "Probe",
    "from_history",
    "generated",
    "signature_of",
    "state_changing",
]

FRESH_SENDER = "0x00000000000000000000000000000000C0FFEE01"
"""An account with no history: what anyone could send, holding nothing but gas."""


@dataclass(frozen=True, slots=True)
class Probe:
    """One call to try: who sends what to which function."""

    contract: str
    address: str
    function: str
    """The signature, ``withdraw(uint256)``: unique even when the ABI overloads a name."""
    sender: str
    data: str
    args: tuple[Any, ...]
    value: int = 0
    source: str = "generated"
    """``history`` (replayed from ``tx_hash``) or ``generated`` (from the ABI)."""
    tx_hash: str | None = None

    def describe(self) -> str:
        shown = ", ".join(_show(a) for a in self.args)
        name = self.function.split("(")[0]
        return f"{self.contract}.{name}({shown}) from {self.sender}"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def signature_of(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(type_of(i) for i in entry.get('inputs', []))})"


def state_changing(abi: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ABI's functions that can change state (neither view nor pure; old ABIs: not ``constant``)."""
    return [
        e
        for e in abi
        if e.get("type") == "function"
        and e.get("stateMutability", "nonpayable") not in ("view", "pure")
        and not e.get("constant", False)
    ]


def _selectors(record: ContractRecord) -> dict[bytes, Mapping[str, Any]]:
    return {
        bytes(function_signature_to_4byte_selector(signature_of(e))): e for e in state_changing(record.abi)
    }


def from_history(
    node: Node,
    contracts: Mapping[str, ContractRecord],
    blocks: int,
    per_function: int,
    *,
    after: int | None = None,
    skip_senders: Sequence[str] = (),
) -> list[Probe]:
    """The newest ``per_function`` distinct calls (sender and calldata) to each function in the last
    ``blocks`` blocks' top-level transactions (only blocks after ``after``: the deployment's end), not
    sent by ``skip_senders`` (the deployer: its set-up calls are no user's). Calls made from inside
    other contracts are not seen."""
    head = int(node.call("eth_blockNumber"), 16)
    skipped = {s.lower() for s in skip_senders}
    by_address = {to_checksum_address(r.address): (name, r, _selectors(r)) for name, r in contracts.items()}
    probes: list[Probe] = []
    seen: dict[str, set[tuple[str, str]]] = {}
    first = max(0, head - blocks + 1, -1 if after is None else after + 1)
    numbers = list(range(head, first - 1, -1))
    for start in range(0, len(numbers), 50):
        chunk = numbers[start : start + 50]
        for block in node.batch([("eth_getBlockByNumber", [hex(n), True]) for n in chunk]):
            for tx in (block or {}).get("transactions", []):
                to = tx.get("to")
                if not to or to_checksum_address(to) not in by_address or str(tx["from"]).lower() in skipped:
                    continue
                name, _record, selectors = by_address[to_checksum_address(to)]
                raw = bytes.fromhex(str(tx.get("input", "0x"))[2:])
                entry = selectors.get(raw[:4])
                if entry is None:
                    continue
                signature = signature_of(entry)
                key = (str(tx["from"]).lower(), raw.hex())
                mine = seen.setdefault(f"{name}.{signature}", set())
                if key in mine or len(mine) >= per_function:
                    continue
                try:
                    args = tuple(decode([type_of(i) for i in entry.get("inputs", [])], raw[4:]))
                except Exception:  # noqa: S112 - calldata that does not decode is not a call to replay
                    continue
                mine.add(key)
                probes.append(
                    Probe(
                        contract=name,
                        address=to_checksum_address(to),
                        function=signature,
                        sender=to_checksum_address(tx["from"]),
                        data="0x" + raw.hex(),
                        args=args,
                        value=int(tx.get("value", "0x0"), 16),
                        source="history",
                        tx_hash=str(tx.get("hash")),
                    )
                )
    return probes


def _candidates(kind: str, sender: str, addresses: Sequence[str]) -> list[Any]:
    if kind.endswith("]"):
        return [[]]
    if kind.startswith("uint"):
        return [1, 10**6, 10**18, 0]
    if kind.startswith("int"):
        return [1, 0, -1]
    if kind == "address":
        return list(dict.fromkeys([sender, *addresses]))
    if kind == "bool":
        return [True, False]
    if kind == "bytes" or kind == "string":
        return [b"" if kind == "bytes" else ""]
    if kind.startswith("bytes"):
        return [bytes(int(kind[5:]))]
    if kind.startswith("("):
        inner = _split_tuple(kind[1:-1])
        return [tuple(_candidates(k, sender, addresses)[0] for k in inner)]
    return []


def _split_tuple(inner: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return [*parts, current] if current else parts


def _combinations(types: Sequence[str], sender: str, addresses: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    pools = [_candidates(t, sender, addresses) for t in types]
    if any(not pool for pool in pools):
        return iter(())
    return itertools.product(*pools)


def generated(
    contracts: Mapping[str, ContractRecord],
    skip: set[str],
    senders: Sequence[str],
    budget: int,
) -> list[Probe]:
    """Up to ``budget`` calls per state-changing function not in ``skip`` (``contract.signature``):
    arguments from small values and known addresses, each from the senders in turn."""
    addresses = [to_checksum_address(r.address) for r in contracts.values()]
    people = list(dict.fromkeys([*senders, to_checksum_address(FRESH_SENDER)]))
    probes: list[Probe] = []
    for name, record in contracts.items():
        for entry in state_changing(record.abi):
            signature = signature_of(entry)
            if f"{name}.{signature}" in skip:
                continue
            types = [type_of(i) for i in entry.get("inputs", [])]
            selector = bytes(function_signature_to_4byte_selector(signature))
            streams = [(s, _combinations(types, s, [*senders, *addresses])) for s in people]
            made = 0
            while made < budget and streams:
                for sender, stream in list(streams):
                    args = next(stream, None)
                    if args is None:
                        streams.remove((sender, stream))
                        continue
                    try:
                        data = selector + encode(types, list(args))
                    except Exception:  # noqa: S112 - a candidate the type does not take
                        continue
                    probes.append(
                        Probe(
                            name,
                            to_checksum_address(record.address),
                            signature,
                            sender,
                            "0x" + data.hex(),
                            args,
                        )
                    )
                    made += 1
                    if made >= budget:
                        break
    return probes
