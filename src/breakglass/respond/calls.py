"""Contract calls of actions: ABI lookup, argument templating from a finding, and ABI-checked encoding.

Everything that can be done before a finding arrives is done once (``CallTemplate``: the function's
ABI entry, selector and argument types); on the hot path only the templated arguments are filled in
and encoded. A value that does not fit its ABI type is a ``ResponseError`` before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import is_address, to_checksum_address

from breakglass.config.refs import closest
from breakglass.domain import Finding
from breakglass.errors import ResponseError

__all__ = [
    "CallTemplate",
    "ContractCall",
    "MissingField",
    "coerce_arg",
    "describe_call",
    "find_function",
    "render_arg",
    "type_of",
]


class MissingField(ResponseError):
    """A template names a label, evidence or finding field that this finding does not carry."""


_TEMPLATE = re.compile(r"\{(?P<path>[a-z_]+(?:\.[A-Za-z0-9_-]+)+)\}")


@dataclass(frozen=True, slots=True)
class ContractCall:
    """One concrete call: what would be sent, before fees, nonce and signature."""

    contract: str
    address: str
    function: str
    signature: str
    args: tuple[Any, ...]
    data: bytes
    value: int = 0

    @property
    def target(self) -> str:
        """``contract.function(args)``: the human name of the call, part of the idempotency key."""
        return describe_call(self.contract, self.function, self.args)


def describe_call(contract: str, function: str, args: Sequence[Any]) -> str:
    shown = ", ".join(str(a) if not isinstance(a, bytes) else "0x" + a.hex() for a in args)
    return f"{contract}.{function}({shown})"


def find_function(abi: Sequence[Mapping[str, Any]], name: str, arity: int | None = None) -> Mapping[str, Any]:
    """The ABI entry of function ``name`` (with ``arity`` inputs when overloaded)."""
    matches = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    if arity is not None and len(matches) > 1:
        matches = [e for e in matches if len(e.get("inputs", [])) == arity]
    if not matches:
        known = sorted({str(e.get("name")) for e in abi if e.get("type") == "function"})
        raise ResponseError(f"the ABI has no function {name!r} {closest(name, known)}")
    if len(matches) > 1:
        raise ResponseError(f"function {name!r} is overloaded; give arguments to choose one")
    return matches[0]


def type_of(entry: Mapping[str, Any]) -> str:
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        inner = ",".join(type_of(c) for c in entry.get("components", []))
        return f"({inner}){kind[5:]}"
    return kind


def render_arg(template: str | int | bool, finding: Finding) -> Any:
    """Fill ``{labels.x}``, ``{evidence.x}``, ``{finding.x}`` from the finding.

    A template that is exactly one placeholder keeps the value's type (an int stays an int).
    """
    if not isinstance(template, str):
        return template
    whole = _TEMPLATE.fullmatch(template)
    if whole:
        return _lookup(whole.group("path"), finding)
    return _TEMPLATE.sub(lambda m: str(_lookup(m.group("path"), finding)), template)


def _lookup(path: str, finding: Finding) -> Any:
    root, *rest = path.split(".")
    value: Any
    if root == "labels":
        value = finding.labels
    elif root == "evidence":
        value = finding.evidence
    elif root == "finding":
        value = {
            "monitor_id": finding.monitor_id,
            "tx_hash": finding.tx_hash,
            "fingerprint": finding.fingerprint,
            "block_number": finding.block_number,
            "chain_id": finding.chain_id,
        }
    else:
        raise ResponseError(f"template {{{path}}}: starts with {root!r}; use labels., evidence. or finding.")
    for part in rest:
        if not isinstance(value, Mapping) or part not in value or value[part] is None:
            raise MissingField(f"template {{{path}}}: the finding of {finding.monitor_id!r} has no {part!r}")
        value = value[part]
    return value


def coerce_arg(kind: str, value: Any, where: str) -> Any:
    """Turn a templated value into what eth-abi encodes for ``kind``, or say precisely why not."""
    try:
        if kind.startswith(("uint", "int")):
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            try:
                number = value if isinstance(value, int) else int(str(value).replace("_", ""), 0)
            except ValueError:
                raise ValueError("not a number") from None
            bits = int(kind.lstrip("uint") or 256)
            low, high = (
                (0, 2**bits - 1) if kind.startswith("uint") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            )
            if not low <= number <= high:
                raise ValueError(f"out of range for {kind}")
            return number
        if kind == "address":
            if not isinstance(value, str) or not is_address(value):
                raise ValueError("not a 20-byte hex address")
            return to_checksum_address(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError("not true or false")
        if kind.startswith("bytes"):
            raw = value if isinstance(value, bytes) else bytes.fromhex(str(value).removeprefix("0x"))
            size = kind[5:]
            if size and len(raw) != int(size):
                raise ValueError(f"{len(raw)} bytes, {kind} needs {size}")
            return raw
        if kind == "string":
            return str(value)
    except ValueError as exc:
        raise ResponseError(f"{where}: {value!r} is not a valid {kind}: {exc}") from None
    raise ResponseError(f"{where}: ABI type {kind} is not supported in playbook arguments")


@dataclass(frozen=True, slots=True)
class CallTemplate:
    """A call with templated arguments, checked against the ABI once, rendered per finding."""

    contract: str
    address: str
    function: str
    arg_types: tuple[str, ...]
    selector: bytes
    args: tuple[str | int | bool, ...]
    outputs: tuple[str, ...] = ()
    static: ContractCall | None = None
    """The call itself when no argument is templated: encoded once, at load, not per finding."""

    @classmethod
    def build(
        cls,
        contract: str,
        address: str,
        abi: Sequence[Mapping[str, Any]],
        function: str,
        args: Sequence[Any],
        *,
        view: bool = False,
    ) -> CallTemplate:
        """Check ``function(args)`` against the ABI. ``view=True`` for reads (ratification checks)."""
        entry = find_function(abi, function, len(args))
        types = tuple(type_of(i) for i in entry.get("inputs", []))
        if len(types) != len(args):
            raise ResponseError(
                f"{contract}.{function} takes {len(types)} argument(s) ({', '.join(types)}), got {len(args)}"
            )
        if not view and entry.get("stateMutability") in ("view", "pure"):
            raise ResponseError(
                f"{contract}.{function} is a {entry['stateMutability']} function: calling it changes nothing"
            )
        for i, (kind, arg) in enumerate(zip(types, args, strict=True)):
            if not (isinstance(arg, str) and "{" in arg):
                coerce_arg(
                    kind, arg, f"{contract}.{function} argument {i}"
                )  # literals fail at load, not at use
        template = cls(
            contract,
            to_checksum_address(address),
            function,
            types,
            bytes(function_signature_to_4byte_selector(f"{function}({','.join(types)})")),
            tuple(args),
            tuple(type_of(o) for o in entry.get("outputs", [])),
        )
        if not any(isinstance(a, str) and _TEMPLATE.search(a) for a in args):
            template = replace(template, static=template._encode(None))
        return template

    @property
    def signature(self) -> str:
        return f"{self.function}({','.join(self.arg_types)})"

    def render(self, finding: Finding) -> ContractCall:
        return self.static if self.static is not None else self._encode(finding)

    def _encode(self, finding: Finding | None) -> ContractCall:
        values = tuple(
            coerce_arg(
                kind,
                arg if finding is None else render_arg(arg, finding),
                f"{self.contract}.{self.function} argument {i}",
            )
            for i, (kind, arg) in enumerate(zip(self.arg_types, self.args, strict=True))
        )
        data = self.selector + encode(list(self.arg_types), list(values))
        return ContractCall(self.contract, self.address, self.function, self.signature, values, data)
