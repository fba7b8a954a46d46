"""Contract view calls for invariants and flows: *which* calls to read, apart from *how* they are read.

A ``ReadCall`` is a parsed ``contract.function(args)`` with its calldata and output decoder; a
``CallExecutor`` runs a list of them against some state and returns raw return data. The block path
uses ``RpcBatchExecutor`` (all calls in one JSON-RPC batch, one HTTP round trip, at the block's
number); the mempool simulator supplies its own executor that reads the post-state of a pending
transaction, and reuses everything else unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError

from breakglass.chain.rpc import RpcClient
from breakglass.config.refs import closest
from breakglass.detect.abi import FunctionAbi, find_function
from breakglass.errors import DetectionError, RpcError

__all__ = [
    "CallExecutor",
    "MulticallExecutor",
    "ReadCall",
    "ReadFailed",
    "RpcBatchExecutor",
    "decode_results",
    "parse_call",
]

_CALL = re.compile(r"^\s*(?P<contract>[A-Za-z_][\w-]*)\.(?P<function>[A-Za-z_]\w*)\((?P<args>.*)\)\s*$")
Contracts = Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]
"""name -> (address, abi)"""


@dataclass(frozen=True, slots=True)
class ReadCall:
    """One view call. ``key`` (its canonical text) deduplicates calls shared by several monitors."""

    key: str
    contract: str
    address: str
    function: FunctionAbi
    calldata: bytes

    def decode(self, data: bytes) -> Any:
        return self.function.decode_output(data)


@dataclass(frozen=True, slots=True)
class ReadFailed:
    """A call that reverted or could not be decoded; stands in for its value."""

    key: str
    reason: str


def _arg(text: str, typ: str, contracts: Contracts) -> Any:
    text = text.strip()
    if text in contracts:
        return contracts[text][0]
    if re.fullmatch(r"[A-Za-z_][\w-]*", text) and text not in ("true", "false"):
        raise ValueError(f"{text!r} is no contract {closest(text, contracts)}")
    if text.startswith(("'", '"')) and text.endswith(text[0]) and len(text) >= 2:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if typ.startswith(("bytes", "address")) and text.startswith("0x"):
        return bytes.fromhex(text[2:]) if typ.startswith("bytes") else text
    return int(text.replace("_", ""), 0)


def parse_call(text: str, contracts: Contracts, monitor_id: str) -> ReadCall:
    """``vault.balanceOf(insurance)`` -> a ReadCall. Arguments: numbers, quoted strings, true/false,
    0x addresses/bytes, and contract names (their address)."""
    match = _CALL.match(text)
    if match is None:
        raise DetectionError(monitor_id, f"call {text!r} is not 'contract.function(args)'")
    name, fn_name = match["contract"], match["function"]
    if name not in contracts:
        raise DetectionError(
            monitor_id, f"call {text!r}: unknown contract {name!r} {closest(name, contracts)}"
        )
    address, abi = contracts[name]
    raw_args = [a for a in match["args"].split(",")] if match["args"].strip() else []
    candidates = [f for f in (find_function(abi, fn_name),) if f is not None]
    if not candidates:
        overloads = [e for e in abi if e.get("type") == "function" and e.get("name") == fn_name]
        if not overloads:
            known = sorted({str(e.get("name")) for e in abi if e.get("type") == "function"})
            message = f"call {text!r}: {name} has no function {fn_name!r} {closest(fn_name, known)}"
            raise DetectionError(monitor_id, message)
        candidates = [FunctionAbi.of(e) for e in overloads]
    function = next((f for f in candidates if len(f.input_types) == len(raw_args)), None)
    if function is None:
        raise DetectionError(
            monitor_id, f"call {text!r}: {fn_name} takes {len(candidates[0].input_types)} argument(s)"
        )
    try:
        args = [_arg(a, t, contracts) for a, t in zip(raw_args, function.input_types, strict=True)]
        calldata = function.selector + encode(list(function.input_types), args)
    except (ValueError, EncodingError) as exc:
        raise DetectionError(monitor_id, f"call {text!r}: bad argument: {exc}") from None
    except TypeError as exc:  # eth-abi refusing a value of the wrong kind
        raise DetectionError(monitor_id, f"call {text!r}: bad argument: {exc}") from None
    key = f"{name}.{fn_name}({','.join(a.strip() for a in raw_args)})"
    return ReadCall(key=key, contract=name, address=address, function=function, calldata=calldata)


class CallExecutor(Protocol):
    """Runs view calls against one state; returns raw return data, or an exception, per call."""

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]: ...


class RpcBatchExecutor:
    """Every call as ``eth_call`` at ``block``, all in one JSON-RPC batch (one round trip)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    @staticmethod
    def requests(
        calls: Sequence[ReadCall], block: int | str | Mapping[str, str]
    ) -> list[tuple[str, tuple[Any, ...]]]:
        """``block``: a number, a tag ("latest", "pending") or an EIP-1898 object ``{"blockHash": h}``."""
        tag = hex(block) if isinstance(block, int) else block
        return [("eth_call", ({"to": c.address, "data": "0x" + c.calldata.hex()}, tag)) for c in calls]

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]:
        results = await self.rpc.batch(self.requests(calls, block), strict=False)
        return [self.raw(r) for r in results]

    @staticmethod
    def raw(result: Any) -> bytes | BaseException:
        if isinstance(result, BaseException | bytes):
            return result
        if isinstance(result, str) and result.startswith("0x"):
            return bytes.fromhex(result[2:])
        return RpcError("eth_call", f"unexpected result {result!r}")


class MulticallExecutor:
    """Every call inside one ``eth_call`` to a Multicall3 ``aggregate3`` contract (same ABI).

    The alternative to ``RpcBatchExecutor``; ``benchmarks/detection.py`` measures both on the devnet.
    """

    _SELECTOR = bytes.fromhex("82ad56cb")  # aggregate3((address,bool,bytes)[])

    def __init__(self, rpc: RpcClient, multicall: str) -> None:
        self.rpc = rpc
        self.multicall = multicall

    async def execute(self, calls: Sequence[ReadCall], block: int | str) -> list[bytes | BaseException]:
        if not calls:
            return []
        method, params = self.request(calls, self.multicall, block)
        return self.unpack(await self.rpc.call(method, *params), len(calls))

    @classmethod
    def request(
        cls, calls: Sequence[ReadCall], multicall: str, block: int | str
    ) -> tuple[str, tuple[Any, ...]]:
        """The one ``eth_call`` that runs ``calls`` at ``block`` (for a JSON-RPC batch of several)."""
        payload = encode(["(address,bool,bytes)[]"], [[(c.address, True, c.calldata) for c in calls]])
        tag = hex(block) if isinstance(block, int) else block
        return "eth_call", ({"to": multicall, "data": "0x" + (cls._SELECTOR + payload).hex()}, tag)

    @staticmethod
    def parse(answer: Any, count: int) -> list[bytes | BaseException] | None:
        """Raw return data per call from an ``aggregate3`` answer (the node's error for every call if
        the ``eth_call`` failed); None when the answer is not ``count`` aggregate3 results."""
        if isinstance(answer, BaseException):
            return [answer] * count
        try:
            (results,) = decode(["(bool,bytes)[]"], bytes.fromhex(str(answer)[2:]))
        except (DecodingError, ValueError, OverflowError):
            return None
        if len(results) != count:
            return None
        return [bytes(data) if ok else RpcError("eth_call", "reverted in multicall") for ok, data in results]

    @classmethod
    def unpack(cls, answer: Any, count: int) -> list[bytes | BaseException]:
        """``parse``, with an answer that is no aggregate3 answer as every call's error."""
        parsed = cls.parse(answer, count)
        if parsed is None:
            return [
                RpcError("eth_call", f"multicall answered {str(answer)[:42]!r} for {count} calls")
            ] * count
        return parsed


def decode_results(calls: Sequence[ReadCall], raw: Sequence[bytes | BaseException]) -> dict[str, Any]:
    """Decoded values by call key; failures as ``ReadFailed``."""
    out: dict[str, Any] = {}
    for call, data in zip(calls, raw, strict=True):
        if isinstance(data, BaseException):
            out[call.key] = ReadFailed(call.key, str(data))
            continue
        try:
            out[call.key] = call.decode(data)
        except (DecodingError, ValueError, OverflowError) as exc:
            out[call.key] = ReadFailed(call.key, f"cannot decode {len(data)} bytes: {exc}")
    return out
