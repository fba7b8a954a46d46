"""Bytes on the wire for the bus: frozen domain dataclasses to tagged JSON and back.

Only registered types travel (``register``), so a message from the bus can never instantiate an
arbitrary class; each stage registers its own message types where it defines them. Field types are
read from the dataclass (or, for the chain data of ``breakglass.domain``, msgspec struct) annotations:
bytes travel as 0x-hex, enums as their values, tuples as lists; ``Mapping[str, Any]`` fields carry
plain JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

import msgspec

from breakglass import domain

__all__ = ["CodecError", "decode", "encode", "register"]

_TYPES: dict[str, type[Any]] = {}


class CodecError(ValueError):
    """A message that is not a registered type, or whose fields do not decode."""


def register(cls: type[Any]) -> type[Any]:
    if not (dataclasses.is_dataclass(cls) or issubclass(cls, msgspec.Struct)):
        raise TypeError(f"{cls.__name__} is not a dataclass or a msgspec struct")
    _TYPES[cls.__name__] = cls
    return cls


for _cls in (domain.Finding, domain.PendingTx, domain.Tx, domain.Block, domain.Log, domain.Receipt):
    register(_cls)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, msgspec.Struct):
        return {name: _plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode(message: Any) -> bytes:
    name = type(message).__name__
    if _TYPES.get(name) is not type(message):
        raise CodecError(f"{name} is not a registered bus message type")
    return json.dumps({"type": name, "data": _plain(message)}, separators=(",", ":")).encode()


def _build(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(args[0], value) if len(args) == 1 else value
    if origin is typing.Annotated:
        return _build(typing.get_args(tp)[0], value)
    if isinstance(tp, typing.NewType):
        return _build(tp.__supertype__, value)
    if origin is tuple:
        (item, *_) = typing.get_args(tp)
        return tuple(_build(item, v) for v in value)
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, Any]):
        return dict(value)
    if isinstance(tp, type):
        if tp is bytes:
            return bytes.fromhex(str(value).removeprefix("0x"))
        if issubclass(tp, enum.Enum):
            return tp(value)
        if dataclasses.is_dataclass(tp) or issubclass(tp, msgspec.Struct):
            hints, fields = _shape(tp)
            # a field the sender did not know (an older version) takes its default
            present = [name for name, optional in fields if name in value or not optional]
            return tp(**{name: _build(hints[name], value[name]) for name in present})
    return value


@functools.cache
def _shape(cls: type[Any]) -> tuple[dict[str, Any], tuple[tuple[str, bool], ...]]:
    """A dataclass's (or struct's) resolved field types (in its own module) and (name, has a
    default) of each field: resolving them is most of a decode's cost (0.5 ms for a
    ``PendingWork``), and they never change."""
    if issubclass(cls, msgspec.Struct):
        fields = tuple((f.name, not f.required) for f in msgspec.structs.fields(cls))
    else:
        fields = tuple((f.name, _has_default(f)) for f in dataclasses.fields(cls))
    return typing.get_type_hints(cls), fields


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def decode(payload: bytes) -> Any:
    try:
        envelope = json.loads(payload)
        cls = _TYPES[envelope["type"]]
        return _build(cls, envelope["data"])
    except KeyError as exc:
        raise CodecError(f"unknown or incomplete bus message: missing {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CodecError(f"undecodable bus message: {exc}") from exc
