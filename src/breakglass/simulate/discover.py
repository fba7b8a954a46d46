"""Which contracts a block created, factories included (``CREATE``/``CREATE2`` inside a transaction).

A receipt names only a top-level deployment's contract. To see the ones a factory creates, the block
is traced, with what the node offers, tried in this order and remembered:

- ``trace_block`` (Parity/OpenEthereum style: Erigon, Nethermind, Reth, anvil): one request per block,
  every ``create`` action with its new address;
- ``debug_traceBlockByNumber`` with the ``callTracer`` (Geth, Reth, anvil): one request per block, the
  call tree walked for ``CREATE``/``CREATE2`` frames;
- neither: the receipts' ``contractAddress``, plus a code diff of the block's touched addresses (each
  transaction's ``to``, each log's emitter, at most ``max_touched`` per block): an address without
  code at the parent and with code at the block was created in it. A factory child that neither
  receives a top-level call nor emits a log is not seen this way.

A creation that reverted (its frame, or its transaction) created nothing and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from breakglass.chain.rpc import RpcClient
from breakglass.domain import Block
from breakglass.errors import RpcError
from breakglass.logs import get_logger

__all__ = ["Created", "CreationFinder", "creations_from_call_tree", "creations_from_parity"]

log = get_logger(__name__)

TRACE_METHODS = ("trace_block", "debug_traceBlockByNumber", "receipts")


@dataclass(frozen=True, slots=True)
class Created:
    """A contract created in a block: by ``creator`` (an account or a factory contract), within the
    transaction ``tx_hash`` sent by ``origin``."""

    address: str
    creator: str
    origin: str
    tx_hash: str
    block_number: int
    via: str
    """how it was found: one of ``TRACE_METHODS``"""


def creations_from_parity(traces: Any) -> list[tuple[str, str, str]]:
    """(address, creator, tx hash) of each successful ``create`` action of a ``trace_block`` answer."""
    out: list[tuple[str, str, str]] = []
    if not isinstance(traces, list):
        return out
    for trace in traces:
        if not isinstance(trace, dict) or trace.get("type") != "create" or trace.get("error"):
            continue
        result, action = trace.get("result") or {}, trace.get("action") or {}
        address = result.get("address") if isinstance(result, dict) else None
        if isinstance(address, str) and isinstance(action, dict):
            out.append(
                (address.lower(), str(action.get("from", "")).lower(), str(trace.get("transactionHash")))
            )
    return out


def creations_from_call_tree(answer: Any) -> list[tuple[str, str, str]]:
    """(address, creator, tx hash) of each successful ``CREATE``/``CREATE2`` frame of a
    ``debug_traceBlockByNumber`` (``callTracer``) answer; a frame under a failed one created nothing."""
    out: list[tuple[str, str, str]] = []
    if not isinstance(answer, list):
        return out

    def walk(frame: Mapping[str, Any], tx_hash: str) -> None:
        if frame.get("error"):
            return
        if str(frame.get("type", "")).upper() in ("CREATE", "CREATE2") and isinstance(frame.get("to"), str):
            out.append((str(frame["to"]).lower(), str(frame.get("from", "")).lower(), tx_hash))
        for child in frame.get("calls") or ():
            if isinstance(child, Mapping):
                walk(child, tx_hash)

    for item in answer:
        if isinstance(item, dict) and isinstance(item.get("result"), dict):
            walk(item["result"], str(item.get("txHash")))
    return out


class CreationFinder:
    """``await finder.created(block)``: the contracts ``block`` created. No I/O until called."""

    def __init__(self, rpc: RpcClient, *, method: str = "auto", max_touched: int = 32) -> None:
        if method not in ("auto", *TRACE_METHODS):
            raise ValueError(f"unknown trace method {method!r} (auto, {', '.join(TRACE_METHODS)})")
        self.rpc = rpc
        self.method: str | None = None if method == "auto" else method
        """the method in use; None until the first block tells which one the node answers"""
        self.max_touched = max_touched

    async def created(self, block: Block) -> list[Created]:
        if not any(tx.receipt is None or tx.receipt.status == 1 for tx in block.transactions):
            return []  # nothing ran: nothing was created
        origins = {tx.hash.lower(): tx.sender.lower() for tx in block.transactions}
        for method in (self.method,) if self.method else TRACE_METHODS:
            try:
                found = await self._by(method, block)
            except RpcError as exc:
                if exc.recoverable or self.method is not None:
                    raise
                log.info("node does not answer this trace method; trying the next", method=method)
                continue
            if self.method is None:
                self.method = method
                log.info("contract creations found with", method=method)
            return [
                Created(
                    address, creator, origins.get(tx_hash.lower(), creator), tx_hash, block.number, method
                )
                for address, creator, tx_hash in found
            ]
        return []

    async def _by(self, method: str, block: Block) -> list[tuple[str, str, str]]:
        if method == "trace_block":
            return creations_from_parity(await self.rpc.call("trace_block", hex(block.number)))
        if method == "debug_traceBlockByNumber":
            answer = await self.rpc.call(
                "debug_traceBlockByNumber", hex(block.number), {"tracer": "callTracer"}
            )
            return creations_from_call_tree(answer)
        return await self._by_receipts(block)

    async def _by_receipts(self, block: Block) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        touched: dict[str, str] = {}
        for tx in block.transactions:
            if tx.receipt is None or tx.receipt.status != 1:
                continue
            if tx.receipt.contract_address:
                out.append((tx.receipt.contract_address.lower(), tx.sender.lower(), tx.hash))
                continue
            named: list[str] = [tx.to] if tx.to is not None else []
            named += [entry.address for entry in tx.receipt.logs]
            for address in named:
                if len(touched) < self.max_touched:
                    touched.setdefault(address.lower(), tx.hash)
        known = {a for a, _c, _t in out}
        candidates = [a for a in touched if a not in known]
        if not candidates:
            return out
        requests: list[tuple[str, Sequence[Any]]] = []
        for candidate in candidates:
            requests += [
                ("eth_getCode", (candidate, hex(block.number - 1))),
                ("eth_getCode", (candidate, hex(block.number))),
            ]
        answers = await self.rpc.batch(requests, strict=False)
        for k, candidate in enumerate(candidates):
            before, after = answers[2 * k], answers[2 * k + 1]
            if before in ("0x", "0x0") and isinstance(after, str) and after not in ("0x", "0x0"):
                # created in this block by a factory; its creator is not known without a trace
                out.append((candidate, "", touched[candidate]))
        return out
