"""ABI decoding for detection: logs by topic0, call inputs by selector, view-call outputs.

Built once per configuration from the contracts' ABIs; each decode is a dictionary lookup plus
``eth_abi.decode``. Decoded values are plain Python (ints, lowercase hex strings for bytes, checksummed
addresses) keyed by parameter name; ``expr.to_cel`` shapes them for expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


WordDecoder = Callable[[bytes], Any]
"""One 32-byte ABI word -> its value; raises ValueError where ``eth_abi`` would refuse it."""

_SIZED = re.compile(r"^(uint|int|bytes)(\d+)$")


def _word_decoder(typ: str) -> WordDecoder | None:
    """A direct decoder for the static one-word types (uintN, intN, address, bool, bytesN), giving
    what ``eth_abi.decode`` gives and refusing what it refuses (dirty padding); None for the others.
    Logs are decoded on every block: ``eth_abi``'s general machinery is ~20x slower on these."""
    if typ == "address":

        def address(word: bytes) -> str:
            if any(word[:12]):
                raise ValueError("address with non-zero padding")
            return "0x" + word[12:].hex()

        return address
    if typ == "bool":

        def boolean(word: bytes) -> bool:
            value = int.from_bytes(word, "big")
            if value > 1:
                raise ValueError("bool that is neither 0 nor 1")
            return value == 1

        return boolean
    match = _SIZED.match(typ)
    if match is None:
        return None
    kind, size = match[1], int(match[2])
    if kind == "bytes":
        if not 1 <= size <= 32:
            return None

        def fixed(word: bytes) -> bytes:
            if any(word[size:]):
                raise ValueError(f"bytes{size} with non-zero padding")
            return word[:size]

        return fixed
    if not (8 <= size <= 256 and size % 8 == 0):
        return None
    if kind == "uint":
        limit = 1 << size

        def unsigned(word: bytes) -> int:
            value = int.from_bytes(word, "big")
            if value >= limit:
                raise ValueError(f"uint{size} out of range")
            return value

        return unsigned
    low, high = -(1 << (size - 1)), 1 << (size - 1)

    def signed(word: bytes) -> int:
        value = int.from_bytes(word, "big", signed=True)
        if not low <= value < high:
            raise ValueError(f"int{size} out of range")
        return value

    return signed


def _word_decoders(types: Sequence[str]) -> tuple[WordDecoder, ...] | None:
    decoders = [_word_decoder(t) for t in types]
    return None if any(d is None for d in decoders) else tuple(d for d in decoders if d is not None)


@dataclass(frozen=True, slots=True)
class EventAbi:
    name: str
    signature: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]
    """(name, type) of the indexed inputs, in topic order."""
    data: tuple[tuple[str, str], ...]
    all_names: tuple[str, ...]
    _fast_topics: tuple[WordDecoder, ...] | None = field(default=None, compare=False, repr=False)
    _fast_data: tuple[WordDecoder, ...] | None = field(default=None, compare=False, repr=False)

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
            _fast_topics=_word_decoders([t for _n, t in indexed]),
            _fast_data=_word_decoders([t for _n, t in data]),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # the fast decoders are closures: rebuilt from the types on the other side (the backfill
        # worker process receives its detectors pickled: ``detect/offload.py``)
        return (_event_abi, (self.name, self.signature, self.topic0, self.indexed, self.data, self.all_names))

    def decode(self, log: Log) -> dict[str, Any] | None:
        """The log's arguments by name, or None when it does not fit this event."""
        if len(log.topics) != len(self.indexed) + 1:
            return None
        if self._fast_topics is not None and self._fast_data is not None:
            return self._decode_words(log, self._fast_topics, self._fast_data)
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

    def _decode_words(
        self, log: Log, topics: tuple[WordDecoder, ...], data: tuple[WordDecoder, ...]
    ) -> dict[str, Any] | None:
        if len(log.data) < 32 * len(data):
            return None
        out: dict[str, Any] = {}
        try:
            for (name, _t), decoder, topic in zip(self.indexed, topics, log.topics[1:], strict=True):
                out[name] = decoder(bytes.fromhex(topic[2:]))
            raw = log.data
            for i, ((name, _t), decoder) in enumerate(zip(self.data, data, strict=True)):
                out[name] = decoder(raw[32 * i : 32 * i + 32])
        except ValueError:
            return None
        return {n: out[n] for n in self.all_names}


def _event_abi(
    name: str,
    signature: str,
    topic0: str,
    indexed: tuple[tuple[str, str], ...],
    data: tuple[tuple[str, str], ...],
    all_names: tuple[str, ...],
) -> EventAbi:
    return EventAbi(
        name,
        signature,
        topic0,
        indexed,
        data,
        all_names,
        _word_decoders([t for _n, t in indexed]),
        _word_decoders([t for _n, t in data]),
    )


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
