"""One ``eth_simulateV1`` request per pending transaction: the view calls, the transaction, the calls again.

Reading every invariant and flow call both before and after the pending transaction, in one request
against one state (the latest block), tells what *this* transaction changes: an invariant already
broken before it is not its doing. ``validation: false`` lets the node skip nonce and fee checks (a
queued transaction, or one priced below the base fee, is still judged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from breakglass.chain.decode import RawLog, decode_log
from breakglass.detect.reads import ReadCall
from breakglass.domain import Log, Tx
from breakglass.errors import ChainDataError, RpcError

__all__ = ["SimulatedBlock", "SimulatedTx", "parse_simulation", "simulation_params", "tx_call", "view_result"]

_METHOD = "eth_simulateV1"


def tx_call(tx: Tx) -> dict[str, Any]:
    """The pending transaction as an ``eth_simulateV1`` call object."""
    call: dict[str, Any] = {
        "from": tx.sender,
        "value": hex(tx.value),
        "input": "0x" + tx.input.hex(),
        "gas": hex(tx.gas),
        "nonce": hex(tx.nonce),
    }
    if tx.to is not None:
        call["to"] = tx.to
    if tx.max_fee_per_gas is not None:
        call["maxFeePerGas"] = hex(tx.max_fee_per_gas)
        call["maxPriorityFeePerGas"] = hex(tx.max_priority_fee_per_gas or 0)
    elif tx.gas_price is not None:
        call["gasPrice"] = hex(tx.gas_price)
    return call


def simulation_params(tx: Tx, reads: Sequence[ReadCall], block: str = "latest") -> tuple[Any, ...]:
    """Params of ``eth_simulateV1``: reads, then ``tx``, then the same reads, on top of ``block``."""
    views = [{"to": c.address, "input": "0x" + c.calldata.hex()} for c in reads]
    calls = [*views, tx_call(tx), *views]
    return ({"blockStateCalls": [{"calls": calls}], "validation": False}, block)


@dataclass(frozen=True, slots=True)
class SimulatedTx:
    status: int
    gas_used: int
    logs: tuple[Log, ...]
    error: str | None


@dataclass(frozen=True, slots=True)
class SimulatedBlock:
    """What the simulation answered: the block it built, the transaction's outcome, reads around it."""

    number: int
    timestamp: int
    hash: str
    base_fee: int | None
    tx: SimulatedTx
    before: list[bytes | BaseException]
    after: list[bytes | BaseException]


def view_result(call: dict[str, Any]) -> bytes | BaseException:
    data = call.get("returnData")
    if int(str(call.get("status", "0x0")), 16) != 1:
        error = call.get("error") or {}
        message = error.get("message", "reverted") if isinstance(error, dict) else str(error)
        return RpcError(_METHOD, f"view call reverted in the simulation: {message}")
    if not isinstance(data, str) or not data.startswith("0x"):
        return RpcError(_METHOD, f"unexpected returnData {data!r}")
    return bytes.fromhex(data[2:])


def parse_simulation(answer: Any, n_reads: int) -> SimulatedBlock:
    """Decode the answer of ``simulation_params``; a malformed one raises ``ChainDataError``."""
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        raise ChainDataError(_METHOD, "result", answer, "not a list of one simulated block")
    block = answer[0]
    calls = block.get("calls")
    if not isinstance(calls, list) or len(calls) != 2 * n_reads + 1:
        raise ChainDataError(_METHOD, "result[0].calls", calls, f"expected {2 * n_reads + 1} call results")
    mine = calls[n_reads]
    try:
        logs = tuple(
            decode_log(RawLog(**raw), _METHOD, f"calls[{n_reads}].logs[{i}].")  # type: ignore[typeddict-item]
            for i, raw in enumerate(mine.get("logs") or [])
        )
        error = mine.get("error")
        sim = SimulatedTx(
            status=int(str(mine.get("status", "0x0")), 16),
            gas_used=int(str(mine.get("gasUsed", "0x0")), 16),
            logs=logs,
            error=(error.get("message") if isinstance(error, dict) else None),
        )
        base_fee = block.get("baseFeePerGas")
        return SimulatedBlock(
            number=int(str(block["number"]), 16),
            timestamp=int(str(block["timestamp"]), 16),
            hash=str(block.get("hash", "0x" + "00" * 32)),
            base_fee=int(str(base_fee), 16) if base_fee is not None else None,
            tx=sim,
            before=[view_result(c) for c in calls[:n_reads]],
            after=[view_result(c) for c in calls[n_reads + 1 :]],
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ChainDataError(_METHOD, "result[0]", str(exc)[:200], "malformed simulated block") from None
