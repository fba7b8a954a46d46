"""The audit itself: on a local node (a fork, or a devnet), apply each containment and try the users' calls.

For every containment: snapshot, impersonate its sender (the guardian, a Safe) and apply its calls,
then try each call that succeeded with nothing contained, each on its own snapshot (send, read the
holders' balances, revert); revert the containment. The node's state is the same at the end as at
the start. Senders are impersonated (anvil's ``anvil_impersonateAccount``) and given gas money.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from breakglass.config.deployment import ContractRecord
from breakglass.coverage.actions import Containment
from breakglass.coverage.node import Node, RpcRefusal
from breakglass.coverage.probes import Probe, from_history, generated
from breakglass.coverage.report import Attempt, ContainmentResult, CoverageReport, FunctionVerdict

__all__ = ["AuditOptions", "ValueScope", "erc20_contracts", "run_audit", "stand_in_sender"]

_BALANCE_OF = bytes(function_signature_to_4byte_selector("balanceOf(address)"))
_GAS_MONEY = hex(10**24)


@dataclass(frozen=True, slots=True)
class AuditOptions:
    history_blocks: int = 256
    """How many of the newest blocks are searched for real calls to replay."""
    per_function: int = 3
    """Distinct real calls kept per function."""
    budget: int = 12
    """Generated calls at most per function history did not cover."""
    keep: int = 3
    """Calls kept per function once they succeed with nothing contained (the ones tried under each)."""


@dataclass(frozen=True, slots=True)
class ValueScope:
    """Where value is measured: tokens (name -> address; ``ETH`` is the native coin) and the holders."""

    tokens: Mapping[str, str]
    holders: Mapping[str, str]


def erc20_contracts(contracts: Mapping[str, ContractRecord]) -> dict[str, str]:
    """The configured contracts whose ABI is a token's (``balanceOf`` and ``transfer``)."""
    tokens: dict[str, str] = {}
    for name, record in contracts.items():
        names = {e.get("name") for e in record.abi if e.get("type") == "function"}
        if {"balanceOf", "transfer", "totalSupply"} <= names:
            tokens[name] = to_checksum_address(record.address)
    return tokens


def stand_in_sender(probes: Sequence[Probe]) -> str | None:
    """The history's busiest sender: who stands for the attacker an action blocks."""
    counts = Counter(p.sender for p in probes if p.source == "history")
    return counts.most_common(1)[0][0] if counts else None


class _Runner:
    def __init__(self, node: Node, scope: ValueScope) -> None:
        self.node = node
        self.scope = scope
        self._reads = [
            (
                token,
                ("eth_getBalance", [holder, "latest"])
                if token == "ETH"  # noqa: S105 - the native coin's name, not a secret
                else (
                    "eth_call",
                    [
                        {"to": address, "data": "0x" + (_BALANCE_OF + encode(["address"], [holder])).hex()},
                        "latest",
                    ],
                ),
            )
            for token, address in scope.tokens.items()
            for holder in scope.holders.values()
        ]
        self._ready: set[str] = set()

    def ready(self, sender: str) -> None:
        if sender in self._ready:
            return
        self.node.call("anvil_impersonateAccount", sender)
        self.node.call("anvil_setBalance", sender, _GAS_MONEY)
        self._ready.add(sender)

    def holdings(self) -> dict[str, int]:
        totals = dict.fromkeys(self.scope.tokens, 0)
        results = self.node.batch([read for _, read in self._reads])
        for (token, _), raw in zip(self._reads, results, strict=True):
            totals[token] += int(raw, 16) if raw not in (None, "0x") else 0
        return totals

    def send(self, sender: str, to: str, data: str, value: int = 0) -> str:
        """Send and mine; '' when it succeeded, else the revert reason."""
        self.ready(sender)
        tx = {"from": sender, "to": to, "data": data, "value": hex(value)}
        try:  # a call first: a revert's reason comes back with it, and a refused call costs no block
            self.node.call("eth_call", tx, "latest")
        except RpcRefusal as exc:
            return str(exc) or "reverted"
        try:
            tx_hash = self.node.call("eth_sendTransaction", tx)
        except RpcRefusal as exc:
            return str(exc) or "reverted"
        receipt = self.node.call("eth_getTransactionReceipt", tx_hash)
        if receipt is None:
            self.node.call("evm_mine")
            receipt = self.node.call("eth_getTransactionReceipt", tx_hash)
        return "" if receipt and int(receipt["status"], 16) == 1 else "reverted in its block"

    def attempt(self, probe: Probe, before: Mapping[str, int]) -> Attempt:
        snapshot = self.node.call("evm_snapshot")
        try:
            reason = self.send(probe.sender, probe.address, probe.data, probe.value)
            outflow: dict[str, int] = {}
            if not reason:
                after = self.holdings()
                outflow = {t: before[t] - after[t] for t in before if after[t] < before[t]}
            return Attempt(probe.describe(), probe.source, not reason, reason, outflow)
        finally:
            self.node.call("evm_revert", snapshot)


def run_audit(
    node: Node,
    *,
    config: str,
    targets: Mapping[str, ContractRecord],
    containments: Sequence[Containment],
    scope: ValueScope,
    options: AuditOptions,
    history: Sequence[Probe] | None = None,
    skipped: Sequence[str] = (),
    forked: bool = True,
) -> CoverageReport:
    """Audit ``containments`` against calls to ``targets``' state-changing functions.

    ``history`` is the replayable calls (``from_history``) when the caller already read them (it needs
    them to choose the stand-in sender before building the containments)."""
    runner = _Runner(node, scope)
    real = (
        list(history)
        if history is not None
        else from_history(node, targets, options.history_blocks, options.per_function)
    )
    covered = {f"{p.contract}.{p.function}" for p in real}
    senders = list(dict.fromkeys(p.sender for p in real))[:3]
    made = generated(targets, covered, senders, options.budget)
    base = node.call("evm_snapshot")
    try:
        start = runner.holdings()
        working: dict[str, list[Probe]] = {}
        baseline_out: set[str] = set()
        for probe in [*real, *made]:
            function = f"{probe.contract}.{probe.function}"
            if len(working.get(function, [])) >= options.keep:
                continue
            attempt = runner.attempt(probe, start)
            if attempt.ok:
                working.setdefault(function, []).append(probe)
                if attempt.outflow:
                    baseline_out.add(function)
        every = [f"{name}.{p}" for name, r in targets.items() for p in _signatures(r)]
        untested = tuple(f for f in every if f not in working)
        results = [_contain(node, runner, c, working) for c in containments]
    finally:
        node.call("evm_revert", base)
    head = node.call("eth_getBlockByNumber", "latest", False)
    return CoverageReport(
        config=config,
        chain_id=int(node.call("eth_chainId"), 16),
        block=int(head["number"], 16),
        forked=forked,
        tokens=tuple(scope.tokens),
        holders=tuple(scope.holders),
        probes={"history": len(real), "generated": len(made)},
        untested=untested,
        baseline_value_out=tuple(sorted(baseline_out)),
        results=tuple(results),
        skipped=tuple(skipped),
    )


def _signatures(record: ContractRecord) -> list[str]:
    from breakglass.coverage.probes import signature_of, state_changing

    return [signature_of(e) for e in state_changing(record.abi)]


def _contain(
    node: Node, runner: _Runner, containment: Containment, working: Mapping[str, list[Probe]]
) -> ContainmentResult:
    snapshot = node.call("evm_snapshot")
    try:
        calls = tuple(c.target for c in containment.calls)
        for call in containment.calls:
            reason = runner.send(call.sender, call.address, call.data)
            if reason:
                return ContainmentResult(
                    containment.name, containment.kind, containment.playbook, calls, False,
                    f"{call.target} from {call.sender}: {reason}", containment.notes,
                )  # fmt: skip
        before = runner.holdings()
        verdicts = []
        for function, probes in working.items():
            attempts = tuple(runner.attempt(p, before) for p in probes)
            if any(a.ok and a.outflow for a in attempts):
                verdict = "value-out"
            elif any(a.ok for a in attempts):
                verdict = "open"
            else:
                verdict = "refused"
            verdicts.append(FunctionVerdict(function, verdict, attempts))
        return ContainmentResult(
            containment.name, containment.kind, containment.playbook, calls, True, "", containment.notes,
            tuple(verdicts),
        )  # fmt: skip
    finally:
        node.call("evm_revert", snapshot)
