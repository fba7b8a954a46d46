"""Look before acting: what a containment call would do to honest traffic, weighed against what it protects.

Before a guardian call is sent, the ``Lookout`` samples the honest flow the call would meet: the node's
pending transactions to protocol contracts (``txpool_content``) and the protocol transactions of the
last blocks, replayed as a stand-in for the next blocks' flow. Two ``eth_simulateV1`` requests on the
latest state (one JSON-RPC batch) run the sample without the call and with the call first; a transaction
that succeeds without it and reverts with it is one the call would make revert. The finding's own
transaction and everything its sender sent are left out (stopping those is the point).

The decision (``Assessment``): withhold, and escalate to people, when a harmed transaction calls a
``never_revert`` function (liquidations: a containment that stops them turns a crash into bad debt) and
the action is not one whose finding proves that path is the attack (``attack_path``), or
when the harm (``harm_per_transaction`` per harmed transaction) exceeds the value at risk (the sum of
the action's ``protects`` view calls); otherwise send. Nothing here is specific to a venue: contracts,
functions and values come from the configuration (``responder.look``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode

from breakglass.config.deployment import ContractRecord
from breakglass.config.playbooks import LookConfig
from breakglass.domain import Finding
from breakglass.errors import BreakglassError, ConfigError, ConfigIssue, ResponseError
from breakglass.logs import get_logger
from breakglass.respond.calls import CallTemplate, ContractCall
from breakglass.respond.rpc import Rpc

__all__ = ["Assessment", "Lookout", "SampledTx"]

log = get_logger(__name__)

SAMPLE_TTL = 2.0
"""Seconds a finding's sample serves its further steps (its playbooks' calls are handled together)."""
_VIEW = re.compile(
    r"^(?P<contract>[A-Za-z_][A-Za-z0-9_]*)\.(?P<function>[A-Za-z_][A-Za-z0-9_]*)\((?P<args>.*)\)$"
)


@dataclass(frozen=True, slots=True)
class SampledTx:
    """One honest transaction of the sample: where it came from and what it calls."""

    tx_hash: str
    sender: str
    to: str
    call: str
    """``contract.function`` (the function's name from the contract's ABI, or the selector)."""
    source: str
    """``pending`` or ``block N``."""
    body: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def as_detail(self) -> dict[str, str]:
        return {"tx": self.tx_hash, "sender": self.sender, "call": self.call, "source": self.source}


@dataclass(frozen=True, slots=True)
class Assessment:
    """The lookout's verdict on one call, with its numbers (recorded in the incident's timeline)."""

    sampled: int
    harmed: tuple[SampledTx, ...]
    never: tuple[SampledTx, ...]
    harm: int
    value_at_risk: int | None
    withhold: bool
    reason: str
    ms: float

    def as_detail(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "harmed": [t.as_detail() for t in self.harmed[:20]],
            "harmed_count": len(self.harmed),
            "never_revert_harmed": len(self.never),
            "harm": self.harm,
            "value_at_risk": self.value_at_risk,
            "decision": "withhold" if self.withhold else "send",
            "reason": self.reason,
            "ms": round(self.ms, 2),
        }


def _views(
    config: LookConfig, contracts: Mapping[str, ContractRecord], file: str
) -> dict[str, list[CallTemplate]]:
    issues: list[ConfigIssue] = []
    out: dict[str, list[CallTemplate]] = {}
    for action, reads in config.protects.items():
        for i, text in enumerate(reads):
            where = f"responder.look.protects[{action!r}][{i}]"
            found = _VIEW.match(text.strip())
            if found is None:
                issues.append(ConfigIssue(file, None, where, f"{text!r} is not 'contract.function(args)'"))
                continue
            record = contracts.get(found["contract"])
            if record is None:
                issues.append(ConfigIssue(file, None, where, f"unknown contract {found['contract']!r}"))
                continue
            raw = [a.strip() for a in found["args"].split(",") if a.strip()]
            args: list[str | int | bool] = [int(a) if a.isdigit() else a for a in raw]
            try:
                view = CallTemplate.build(
                    found["contract"], record.address, record.abi, found["function"], args, view=True
                )
            except ResponseError as exc:
                issues.append(ConfigIssue(file, None, where, str(exc)))
                continue
            if len(view.outputs) != 1 or not view.outputs[0].startswith("uint"):
                issues.append(ConfigIssue(file, None, where, f"{text!r} must return one uint"))
                continue
            out.setdefault(action, []).append(view)
    if issues:
        raise ConfigError(issues)
    return out


def _selectors(contracts: Mapping[str, ContractRecord]) -> dict[tuple[str, str], str]:
    """(address, selector hex) -> ``contract.function`` for every function of every protocol contract."""
    from eth_utils.abi import function_abi_to_4byte_selector

    out: dict[tuple[str, str], str] = {}
    for name, record in contracts.items():
        for entry in record.abi:
            if entry.get("type") == "function":
                selector = function_abi_to_4byte_selector(dict(entry)).hex()  # type: ignore[arg-type]
                out[(record.address.lower(), selector)] = f"{name}.{entry['name']}"
    return out


def _status(answer: Any, expected: int) -> list[bool] | None:
    if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], Mapping):
        return None
    calls = answer[0].get("calls")
    if not isinstance(calls, list) or len(calls) != expected:
        return None
    return [isinstance(c, Mapping) and int(str(c.get("status", "0x0")), 16) == 1 for c in calls]


class Lookout:
    """Simulates a call's effect on honest traffic and decides: send, or withhold and escalate."""

    def __init__(
        self,
        rpc: Rpc,
        config: LookConfig,
        contracts: Mapping[str, ContractRecord],
        *,
        file: str = "",
    ) -> None:
        self.rpc = rpc
        self.config = config
        self.protocol = {r.address.lower() for r in contracts.values()}
        self.views = _views(config, contracts, file)
        self.names = _selectors(contracts)
        self._blocks: dict[int, list[Mapping[str, Any]]] = {}
        self._samples: dict[tuple[Any, ...], tuple[float, list[SampledTx], list[bool] | None]] = {}

    async def assess(self, action: str, call: ContractCall, finding: Finding, sender: str) -> Assessment:
        """The verdict on sending ``call`` (the playbook's ``action``) from ``sender`` for ``finding``."""
        started = time.perf_counter()
        action_call = {"from": sender, "to": call.address, "input": "0x" + call.data.hex(), "value": "0x0"}
        try:
            sample, before, after = await self._sampled(finding, action_call)
        except BreakglassError as exc:  # no look possible: containment goes on, the reason is recorded
            log.warning("respond.look_failed", error=str(exc)[:200])
            return Assessment(0, (), (), 0, None, False, f"look failed: {exc}"[:200], 0.0)
        harmed: list[SampledTx] = []
        if sample and before is not None:
            if after is None:
                after = await self._simulate(sample, first=action_call)
            if after is not None:
                harmed = [t for t, ok, now in zip(sample, before, after, strict=True) if ok and not now]
        proven = action in self.config.attack_path
        never = () if proven else tuple(t for t in harmed if self._never(t.call))
        harm = len(harmed) * self.config.harm_per_transaction
        # the value at risk only matters against some harm: no read on the hot path otherwise
        value = await self._value(action, finding) if harm else None
        if never:
            withhold = True
            reason = f"{len(never)} honest {never[0].call} call(s) would revert (never_revert)"
        elif value is not None and harm > value:
            withhold = True
            reason = f"harm {harm} exceeds the value at risk {value}"
        else:
            withhold = False
            reason = f"{len(harmed)} of {len(sample)} sampled honest transactions would revert"
        return Assessment(
            sampled=len(sample),
            harmed=tuple(harmed),
            never=never,
            harm=harm,
            value_at_risk=value,
            withhold=withhold,
            reason=reason,
            ms=(time.perf_counter() - started) * 1000,
        )

    def _never(self, call: str) -> bool:
        function = call.rsplit(".", 1)[-1]
        return any(fnmatch.fnmatchcase(function, p) for p in self.config.never_revert)

    async def _sampled(
        self, finding: Finding, action: dict[str, Any]
    ) -> tuple[list[SampledTx], list[bool] | None, list[bool] | None]:
        """The sample for ``finding``, how it runs without any action (made once for all the steps of
        the finding's playbooks, handled within moments of each other), and, when made now, how it runs
        after ``action`` (simulated alongside, not after: the first step waits one round trip less)."""
        now = time.monotonic()
        key = (finding.fingerprint, finding.monitor_id, finding.tx_hash, finding.block_number)
        cached = self._samples.get(key)
        if cached is not None and now - cached[0] < SAMPLE_TTL:
            return cached[1], cached[2], None
        sample = await self._sample(finding)
        before: list[bool] | None = None
        after: list[bool] | None = None
        if sample:
            before, after = await asyncio.gather(self._simulate(sample), self._simulate(sample, first=action))
        self._samples[key] = (now, sample, before)
        while len(self._samples) > 64:
            self._samples.pop(next(iter(self._samples)))
        return sample, before, after

    async def _sample(self, finding: Finding) -> list[SampledTx]:
        """Honest protocol transactions: pending first, then the last blocks', newest first."""
        # the pool and the head block in one round trip; older blocks by number (cached once seen)
        pool_answer, head_answer = await asyncio.gather(self._pool(), self._head(), return_exceptions=True)
        if isinstance(head_answer, BaseException):
            raise head_answer
        head = head_answer
        numbers = [n for n in range(head - 1, head - self.config.recent_blocks, -1) if n > 0]
        older = await asyncio.gather(*(self._block(n) for n in numbers), return_exceptions=True)
        numbers = ([head] if head and self.config.recent_blocks else []) + numbers
        blocks = [self._blocks.get(head, []), *older] if head and self.config.recent_blocks else list(older)
        raw: list[tuple[str, Mapping[str, Any]]] = []
        if isinstance(pool_answer, BaseException):
            log.warning("respond.look_no_pool", error=str(pool_answer)[:200])
        elif pool_answer is not None:
            for by_sender in (pool_answer.get("pending") or {}).values():
                for body in (by_sender or {}).values():
                    raw.append(("pending", body))
        for number, txs in zip(numbers, blocks, strict=True):
            if isinstance(txs, list):
                raw += [(f"block {number}", body) for body in txs]
        # the finding's transaction and its sender's others: stopping them is the point
        excluded = {str(finding.evidence.get(k, "")).lower() for k in ("attacker", "sender", "actor")}
        excluded.discard("")
        for _, body in raw:
            if finding.tx_hash and str(body.get("hash", "")).lower() == finding.tx_hash.lower():
                excluded.add(str(body.get("from", "")).lower())
        out: list[SampledTx] = []
        seen: set[str] = set()
        for source, body in raw:
            to = str(body.get("to") or "").lower()
            tx_hash = str(body.get("hash", "")).lower()
            sender = str(body.get("from", "")).lower()
            if to not in self.protocol or sender in excluded or tx_hash in seen:
                continue
            seen.add(tx_hash)
            data = str(body.get("input") or body.get("data") or "0x")
            call = self.names.get((to, data[2:10]), f"{to}.0x{data[2:10]}")
            out.append(SampledTx(tx_hash, sender, to, call, source, body))
            if len(out) >= self.config.max_transactions:
                break
        return out

    async def _pool(self) -> Mapping[str, Any] | None:
        if not self.config.pending:
            return None
        answer = await self.rpc.call("txpool_content")
        return answer if isinstance(answer, Mapping) else None

    async def _head(self) -> int:
        """The latest block's number, its transactions cached (0 when no block is sampled)."""
        if not self.config.recent_blocks:
            return 0
        block = await self.rpc.call("eth_getBlockByNumber", "latest", True)
        if not isinstance(block, Mapping):
            return 0
        number = int(str(block.get("number", "0x0")), 16)
        self._blocks[number] = [t for t in block.get("transactions", []) if isinstance(t, Mapping)]
        return number

    async def _block(self, number: int) -> list[Mapping[str, Any]]:
        cached = self._blocks.get(number)
        if cached is None:
            block = await self.rpc.call("eth_getBlockByNumber", hex(number), True)
            txs = block.get("transactions", []) if isinstance(block, Mapping) else []
            cached = self._blocks[number] = [t for t in txs if isinstance(t, Mapping)]
            while len(self._blocks) > 32:
                self._blocks.pop(min(self._blocks))
        return cached

    @staticmethod
    def _replay(sample: Sequence[SampledTx]) -> list[dict[str, Any]]:
        return [
            {
                "from": t.body.get("from"),
                "to": t.body.get("to"),
                "input": t.body.get("input") or t.body.get("data") or "0x",
                "value": t.body.get("value", "0x0"),
                "gas": t.body.get("gas", hex(1_000_000)),
            }
            for t in sample
        ]

    async def _simulate(
        self, sample: Sequence[SampledTx], first: dict[str, Any] | None = None
    ) -> list[bool] | None:
        """Which of ``sample`` succeed, run in order on the latest state (after ``first``, if given)."""
        calls = ([first] if first else []) + self._replay(sample)
        try:
            answer = await self.rpc.call(
                "eth_simulateV1", {"blockStateCalls": [{"calls": calls}], "validation": False}, "latest"
            )
        except BreakglassError as exc:
            log.warning("respond.look_failed", error=str(exc)[:200])
            return None
        statuses = _status(answer, len(calls))
        if statuses is None:
            log.warning("respond.look_malformed")
            return None
        return statuses[1:] if first else statuses

    async def _value(self, action: str, finding: Finding) -> int | None:
        views = self.views.get(action)
        if not views:
            return None
        total = 0
        for view in views:
            try:
                read = view.render(finding)
                raw = await self.rpc.call(
                    "eth_call", {"to": read.address, "data": "0x" + read.data.hex()}, "latest"
                )
                (value,) = decode(["uint256"], bytes.fromhex(str(raw)[2:]))
                total += int(value)
            except (BreakglassError, ValueError) as exc:
                log.warning("respond.look_value_unreadable", action=action, error=str(exc)[:200])
                return None
        return total
