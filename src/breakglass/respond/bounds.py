"""Monotonic bounds read on chain: the parameter's current value, against which a new one must be tighter.

A bound is declared per argument in ``policy.allow`` (``tighter: lower|higher`` and ``current``, a view
call such as ``guardian.maxLeverage(args.marketId)``: ``args.NAME`` is an argument of the call being
checked, other arguments are literals or contract names). ``BoundRead.parse`` checks it against the
ABIs once; per call, ``calldata`` encodes the view for that call's arguments and ``decode`` reads the
integer it returns. Reading is the responder's job (one ``eth_call`` at the latest block, before each
send); this module does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from breakglass.config.deployment import ContractRecord
from breakglass.config.refs import closest
from breakglass.errors import ResponseError
from breakglass.respond.calls import coerce_arg, find_function, type_of

__all__ = ["ArgRef", "BoundRead"]

_CALL = re.compile(r"^\s*(?P<contract>[A-Za-z_][\w-]*)\.(?P<function>[A-Za-z_]\w*)\((?P<args>.*)\)\s*$")


@dataclass(frozen=True, slots=True)
class ArgRef:
    """An argument of the checked call, by position."""

    index: int


@dataclass(frozen=True, slots=True)
class BoundRead:
    text: str
    contract: str
    address: str
    selector: bytes
    arg_types: tuple[str, ...]
    sources: tuple[ArgRef | Any, ...]
    output_types: tuple[str, ...]
    output: int

    @classmethod
    def parse(
        cls,
        text: str,
        output: str | int | None,
        contracts: Mapping[str, ContractRecord],
        params: Sequence[tuple[str, str]],
    ) -> BoundRead:
        """``text`` against the ABIs; ``params``: (name, type) of the checked call's arguments.

        Raises ``ResponseError`` saying what is wrong, with the known names."""
        match = _CALL.match(text)
        if match is None:
            raise ResponseError(f"current {text!r} is not 'contract.function(args)'")
        name, function = match["contract"], match["function"]
        record = contracts.get(name)
        if record is None:
            raise ResponseError(f"current {text!r}: unknown contract {name!r} {closest(name, contracts)}")
        raw = [a.strip() for a in match["args"].split(",")] if match["args"].strip() else []
        try:
            entry = find_function(record.abi, function, len(raw))
        except ResponseError as exc:
            raise ResponseError(f"current {text!r}: {exc}") from None
        if entry.get("stateMutability") not in ("view", "pure"):
            raise ResponseError(f"current {text!r}: {name}.{function} is not a view function")
        types = tuple(type_of(i) for i in entry.get("inputs", []))
        if len(types) != len(raw):
            raise ResponseError(
                f"current {text!r}: {name}.{function} takes {len(types)} argument(s), got {len(raw)}"
            )
        names = [n for n, _t in params]
        sources: list[ArgRef | Any] = []
        for i, (kind, arg) in enumerate(zip(types, raw, strict=True)):
            if arg.startswith("args."):
                wanted = arg.removeprefix("args.")
                if wanted not in names:
                    raise ResponseError(
                        f"current {text!r}: the call has no argument {wanted!r} {closest(wanted, names)}"
                    )
                index = names.index(wanted)
                if params[index][1] != kind:
                    raise ResponseError(
                        f"current {text!r}: args.{wanted} is {params[index][1]}, {name}.{function} "
                        f"argument {i} is {kind}"
                    )
                sources.append(ArgRef(index))
            elif arg in contracts:
                sources.append(coerce_arg(kind, contracts[arg].address, f"current {text!r} argument {i}"))
            else:
                literal: Any = arg.strip("'\"") if arg[:1] in "'\"" else arg
                if kind.startswith(("uint", "int")) and isinstance(literal, str):
                    literal = literal.replace("_", "")
                sources.append(coerce_arg(kind, literal, f"current {text!r} argument {i}"))
        outputs = tuple(type_of(o) for o in entry.get("outputs", []))
        index = _output(text, output, entry.get("outputs", []))
        if index >= len(outputs) or not outputs[index].startswith(("uint", "int")):
            shown = ", ".join(outputs) or "nothing"
            raise ResponseError(f"current {text!r}: output {index} must be an integer (returns {shown})")
        selector = bytes.fromhex(_selector(function, types))
        return cls(
            text, name, to_checksum_address(record.address), selector, types, tuple(sources), outputs, index
        )

    def calldata(self, args: Sequence[Any]) -> bytes:
        values = [args[s.index] if isinstance(s, ArgRef) else s for s in self.sources]
        return self.selector + encode(list(self.arg_types), values)

    def decode(self, data: bytes) -> int:
        try:
            value = decode(list(self.output_types), data)[self.output]
        except (DecodingError, ValueError, OverflowError) as exc:
            raise ResponseError(f"{self.text}: cannot decode the answer 0x{data.hex()}: {exc}") from None
        return int(value)


def _output(text: str, output: str | int | None, outputs: Sequence[Mapping[str, Any]]) -> int:
    if output is None:
        if len(outputs) != 1:
            names = [str(o.get("name") or i) for i, o in enumerate(outputs)]
            raise ResponseError(
                f"current {text!r} returns {len(outputs)} values: choose one with output ({', '.join(names)})"
            )
        return 0
    if isinstance(output, int):
        return output
    names = [str(o.get("name") or "") for o in outputs]
    if output not in names:
        raise ResponseError(
            f"current {text!r} has no output {output!r} {closest(output, [n for n in names if n])}"
        )
    return names.index(output)


def _selector(function: str, types: Sequence[str]) -> str:
    from eth_utils.abi import function_signature_to_4byte_selector

    return bytes(function_signature_to_4byte_selector(f"{function}({','.join(types)})")).hex()
