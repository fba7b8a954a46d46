"""The calls an attack-contract simulation tries, and the ``eth_simulateV1`` request of each.

Pure: given a contract's selectors, who may call it and the protocol's addresses, ``single_probes``
lists one-call probes in rounds of increasing cost (argument sets), each round over every selector and
caller; ``pair_probes`` lists two-call sequences (the first prepares the second: arm, then fire).

Arguments are not known (there is no ABI), so they are guessed, cheapest first: none, zero words
(a zero amount, ``false``, an empty array), each funded amount (``funding.py``), sets derived from
what the contract holds (``derived_sets``: a protocol address, a margin and a leveraged size, a loop
count), each protocol address as the first argument (those the code does not embed first), an array of
one protocol address, a one. A
function that reads its arguments from elsewhere, or needs values only the attacker knows, is not
reached (docs/detection.md).

Each probe runs on the latest state with the callers given ether by a state override, flash-loan
style; ``overrides`` adds the contract's token balances (``funding.py``). The
protocol's view calls are read before the first call and after the last, in the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from breakglass.chain.decode import RawLog, decode_log
from breakglass.detect.reads import ReadCall
from breakglass.domain import Log
from breakglass.errors import ChainDataError
from breakglass.simulate.request import SimulatedBlock, SimulatedTx, view_result

__all__ = [
    "FRESH_CALLER",
    "PROBE_GAS",
    "CallOutcome",
    "ProbeCall",
    "argument_sets",
    "derived_sets",
    "pair_probes",
    "parse_probe",
    "probe_params",
    "single_probes",
]

FRESH_CALLER = "0x" + keccak(b"breakglass/attack-simulation/fresh-account")[12:].hex()
"""An account nobody holds: a call that works from it works from anyone."""
PROBE_GAS = 15_000_000
CALLER_WEI = 10**24
"""Ether given to each caller by state override (a million ether: enough for any fee or value)."""
PROBE_VALUE = 10**18
"""Ether sent with a plain transfer to the contract (its ``receive``/``fallback``)."""

_WORD = 32
_METHOD = "eth_simulateV1"


def _word(value: int | str) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value[2:]).rjust(_WORD, b"\0")
    return value.to_bytes(_WORD, "big")


@dataclass(frozen=True, slots=True)
class ProbeCall:
    sender: str
    to: str
    data: bytes
    value: int = 0

    @property
    def selector(self) -> bytes:
        return self.data[:4]

    def as_call(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "input": "0x" + self.data.hex(),
            "value": hex(self.value),
            "gas": hex(PROBE_GAS),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.sender,
            "to": self.to,
            "selector": "0x" + self.selector.hex() if self.data else None,
            "input": "0x" + self.data.hex(),
            "value": self.value,
        }


def argument_sets(addresses: Sequence[str], amounts: Sequence[int] = ()) -> list[bytes]:
    """Encoded argument lists to try, cheapest first (``addresses``: the protocol's, most likely first;
    ``amounts``: what the contract was funded with, as a first argument)."""
    zeros = _word(0) * 4
    out = [b"", zeros]
    out += [_word(n) + _word(0) * 3 for n in amounts]
    out += [_word(a) + _word(0) * 3 for a in addresses]
    out += [_word(0x20) + _word(1) + _word(a) for a in addresses]
    out.append(_word(1) + _word(0) * 3)
    return out


LEVERAGE = (8, 40)
"""Multiples of a margin tried as a position size when none are configured (``attack_simulation.
leverage`` has the same default): 80% of the common 10x and 50x caps (an opening fee comes off the
margin, so the cap itself is refused)."""
COUNTS = (16,)
"""Loop counts tried as a trailing argument (a loop that stops when nothing is left to take)."""


def derived_sets(
    addresses: Sequence[str],
    holdings: Sequence[int],
    *,
    leverage: Sequence[int] = LEVERAGE,
    counts: Sequence[int] = COUNTS,
) -> list[bytes]:
    """Argument lists derived from what the contract holds (its token balances, read on the probe's
    state), for a function that takes a protocol address, two amounts and a count: half of each
    holding ``m`` as a margin and ``m * L`` as a size, both orders, then each loop count. Most likely
    first: the holding's largest, the first address. Empty when the contract holds nothing."""
    out: list[bytes] = []
    for h in sorted({h for h in holdings if h > 1}, reverse=True):
        m = h // 2
        pairs = [(m * lev, m) for lev in leverage] + [(m, m * lev) for lev in leverage]
        for a in addresses:
            for x, y in pairs:
                out += [_word(a) + _word(x) + _word(y) + _word(n) for n in counts]
    return list(dict.fromkeys(out))


def single_probes(
    contract: str,
    selectors: Iterable[bytes],
    callers: Sequence[str],
    args: Sequence[bytes],
    *,
    skip: Mapping[int, set[bytes]] | None = None,
) -> list[list[ProbeCall]]:
    """Rounds of one-call probes: round ``k`` calls every selector with ``args[k]`` from each caller
    (a plain ether transfer first, in round 0). ``skip[k]``: selectors not to try from round ``k``."""
    chosen = list(selectors)
    rounds: list[list[ProbeCall]] = []
    for k, encoded in enumerate(args):
        calls: list[ProbeCall] = []
        if k == 0:
            calls += [ProbeCall(c, contract, b"", PROBE_VALUE) for c in callers]
        skipped = skip.get(k, set()) if skip else set()
        for selector in chosen:
            if selector in skipped:
                continue
            calls += [ProbeCall(c, contract, selector + encoded) for c in callers]
        rounds.append(calls)
    return rounds


def pair_probes(
    prepared: Sequence[ProbeCall], strikes: Sequence[ProbeCall], limit: int
) -> list[tuple[ProbeCall, ProbeCall]]:
    """Two-call sequences: each call that changed something (``prepared``), then each of ``strikes``
    from the same caller; at most ``limit``."""
    out: list[tuple[ProbeCall, ProbeCall]] = []
    for first in prepared:
        for second in strikes:
            if second.sender != first.sender or (second == first and not first.data):
                continue
            out.append((first, second))
            if len(out) >= limit:
                return out
    return out


def probe_params(
    calls: Sequence[ProbeCall],
    reads: Sequence[ReadCall],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    block: str = "latest",
    follow: Sequence[ProbeCall] = (),
) -> tuple[Any, ...]:
    """``eth_simulateV1`` params: the reads, ``calls`` in order, the ``follow`` -ups (the protocol's own
    actors, ``followups.py``), the reads again, on ``block``; every caller funded with ether (plus
    ``overrides``)."""
    state: dict[str, dict[str, Any]] = {a: dict(o) for a, o in (overrides or {}).items()}
    for call in (*calls, *follow):
        state.setdefault(call.sender, {}).setdefault("balance", hex(CALLER_WEI))
    views = [{"to": c.address, "input": "0x" + c.calldata.hex()} for c in reads]
    block_calls = [*views, *(c.as_call() for c in (*calls, *follow)), *views]
    return (
        {"blockStateCalls": [{"stateOverrides": state, "calls": block_calls}], "validation": False},
        block,
    )


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One probe call's result in the simulation."""

    ok: bool
    returned: bytes
    logs: int
    gas_used: int
    emitted: tuple[Log, ...] = ()
    """its logs, decoded when asked for (``parse_probe(..., keep_logs=True)``)"""


def _logs(call: Mapping[str, Any], at: int) -> tuple[Log, ...]:
    return tuple(
        decode_log(RawLog(**raw), _METHOD, f"calls[{at}].logs[{i}].")  # type: ignore[typeddict-item]
        for i, raw in enumerate(call.get("logs") or [])
    )


def parse_probe(
    answer: Any, n_reads: int, n_calls: int, n_follow: int = 0, *, keep_logs: bool = False
) -> tuple[SimulatedBlock, list[CallOutcome]]:
    """Decode the answer of ``probe_params``: the simulated block as the judge reads it (the last
    call as its transaction, with the logs of the follow-ups that ran, the reads around all the calls)
    and each probe call's outcome (``keep_logs``: with its decoded logs). Whether the transaction
    succeeded is the probe calls' alone: a follow-up that reverts changed nothing. A malformed answer
    raises ``ChainDataError``."""
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
        raise ChainDataError(_METHOD, "result", str(answer)[:200], "not a list of one simulated block")
    block = answer[0]
    calls = block.get("calls")
    n_all = n_calls + n_follow
    if not isinstance(calls, list) or len(calls) != 2 * n_reads + n_all:
        raise ChainDataError(
            _METHOD, "result[0].calls", str(calls)[:200], f"expected {2 * n_reads + n_all} call results"
        )
    try:
        mine = calls[n_reads : n_reads + n_calls]
        outcomes = [
            CallOutcome(
                ok=_status(c) == 1,
                returned=bytes.fromhex(str(c.get("returnData") or "0x")[2:]),
                logs=len(c.get("logs") or ()),
                gas_used=int(str(c.get("gasUsed", "0x0")), 16),
                emitted=_logs(c, n_reads + k) if keep_logs else (),
            )
            for k, c in enumerate(mine)
        ]
        last = mine[-1]
        logs = outcomes[-1].emitted if keep_logs else _logs(last, n_reads + n_calls - 1)
        for k in range(n_reads + n_calls, n_reads + n_all):
            if _status(calls[k]) == 1:
                logs += _logs(calls[k], k)
        error = last.get("error")
        ok = all(o.ok for o in outcomes)
        tx = SimulatedTx(
            status=1 if ok else 0,
            gas_used=outcomes[-1].gas_used,
            logs=logs,
            error=(error.get("message") if isinstance(error, dict) else None),
        )
        base_fee = block.get("baseFeePerGas")
        sim = SimulatedBlock(
            number=int(str(block["number"]), 16),
            timestamp=int(str(block["timestamp"]), 16),
            hash=str(block.get("hash", "0x" + "00" * 32)),
            base_fee=int(str(base_fee), 16) if base_fee is not None else None,
            tx=tx,
            before=[view_result(c) for c in calls[:n_reads]],
            after=[view_result(c) for c in calls[n_reads + n_all :]],
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ChainDataError(_METHOD, "result[0]", str(exc)[:200], "malformed simulated block") from None
    return sim, outcomes


def _status(call: Mapping[str, Any]) -> int:
    return int(str(call.get("status", "0x0")), 16)
