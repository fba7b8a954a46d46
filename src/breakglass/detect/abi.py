"""ABI decoding for detection: logs by topic0, call inputs by selector, view-call outputs.

Built once per configuration from the contracts' ABIs; each decode is a dictionary lookup plus
``eth_abi.decode``. Decoded values are plain Python (ints, lowercase hex strings for bytes, checksummed
addresses) keyed by parameter name; ``expr.to_cel`` shapes them for expressions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import (
    abi_to_signature,
    collapse_if_tuple,
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
)

from breakglass.domain import Log

__all__ = ["AbiIndex", "EventAbi", "FunctionAbi", "find_event", "find_function"]


def _types(params: Sequence[Mapping[str, Any]]) -> list[str]:
    return [collapse_if_tuple(dict(p)) for p in params]


def _names(params: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(p.get("name") or f"arg{i}") for i, p in enumerate(params)]


@dataclass(frozen=True, slots=True)
class EventAbi:
    name: str
    signature: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]
    """(name, type) of the indexed inputs, in topic order."""
    data: tuple[tuple[str, str], ...]
    all_names: tuple[str, ...]

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> EventAbi:
        inputs = list(entry.get("inputs", []))
        names = _names(inputs)
        types = _types(inputs)
        indexed = tuple((n, t) for n, t, p in zip(names, types, inputs, strict=True) if p.get("indexed"))
        data = tuple((n, t) for n, t, p in zip(names, types, inputs, strict=True) if not p.get("indexed"))
        return cls(
            name=str(entry["name"]),
            signature=abi_to_signature(entry),  # type: ignore[arg-type]
            topic0="0x" + event_abi_to_log_topic(entry).hex(),  # type: ignore[arg-type]
            indexed=indexed,
            data=data,
            all_names=tuple(names),
        )

    def decode(self, log: Log) -> dict[str, Any] | None:
        """The log's arguments by name, or None when it does not fit this event."""
        if len(log.topics) != len(self.indexed) + 1:
            return None
        out: dict[str, Any] = {}
        try:
            for (name, typ), topic in zip(self.indexed, log.topics[1:], strict=True):
                dynamic = typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("(")
                out[name] = topic if dynamic else decode([typ], bytes.fromhex(topic[2:]))[0]
            if self.data:
                values = decode([t for _n, t in self.data], log.data)
                out.update(zip((n for n, _t in self.data), values, strict=True))
        except (DecodingError, ValueError, OverflowError):
            return None
        return {n: out[n] for n in self.all_names}


@dataclass(frozen=True, slots=True)
class FunctionAbi:
    name: str
    signature: str
    selector: bytes
    input_names: tuple[str, ...]
    input_types: tuple[str, ...]
    output_names: tuple[str, ...]
    output_types: tuple[str, ...]

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> FunctionAbi:
        inputs, outputs = list(entry.get("inputs", [])), list(entry.get("outputs", []))
        return cls(
            name=str(entry["name"]),
            signature=abi_to_signature(entry),  # type: ignore[arg-type]
            selector=function_abi_to_4byte_selector(entry),  # type: ignore[arg-type]
            input_names=tuple(_names(inputs)),
            input_types=tuple(_types(inputs)),
            output_names=tuple(str(p.get("name") or "") for p in outputs),
            output_types=tuple(_types(outputs)),
        )

    def decode_input(self, data: bytes) -> dict[str, Any] | None:
        if data[:4] != self.selector:
            return None
        try:
            values = decode(list(self.input_types), data[4:])
        except (DecodingError, ValueError, OverflowError):
            return None
        return dict(zip(self.input_names, values, strict=True))

    def decode_output(self, data: bytes) -> Any:
        """One output as itself; several as a dict by name (positional ``_0``, ``_1`` when unnamed)."""
        values = decode(list(self.output_types), data)
        if len(values) == 1:
            return values[0]
        return {(n or f"_{i}"): v for i, (n, v) in enumerate(zip(self.output_names, values, strict=True))}


def find_event(abi: Sequence[Mapping[str, Any]], name: str) -> EventAbi | None:
    """An event by name or by full signature (``Transfer(address,address,uint256)``)."""
    events = [EventAbi.of(e) for e in abi if e.get("type") == "event"]
    matches = [e for e in events if name in (e.signature, e.name)]
    return matches[0] if len(matches) == 1 else next((e for e in matches if e.signature == name), None)


def find_function(abi: Sequence[Mapping[str, Any]], name: str) -> FunctionAbi | None:
    functions = [FunctionAbi.of(f) for f in abi if f.get("type") == "function"]
    matches = [f for f in functions if name in (f.signature, f.name)]
    return matches[0] if len(matches) == 1 else next((f for f in matches if f.signature == name), None)


class AbiIndex:
    """Every event of every configured contract by (address, topic0), decoded once per log."""

    def __init__(self, contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]) -> None:
        """``contracts``: name -> (address, abi)."""
        self.names: dict[str, str] = {}
        self._events: dict[tuple[str, str], EventAbi] = {}
        for name, (address, abi) in contracts.items():
            key = address.lower()
            self.names[key] = name
            for entry in abi:
                if entry.get("type") == "event" and not entry.get("anonymous"):
                    event = EventAbi.of(entry)
                    self._events[(key, event.topic0)] = event

    def decode_log(self, log: Log) -> tuple[EventAbi, dict[str, Any]] | None:
        if not log.topics:
            return None
        event = self._events.get((log.address.lower(), log.topics[0]))
        if event is None:
            return None
        args = event.decode(log)
        return None if args is None else (event, args)
