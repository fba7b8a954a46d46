"""The audit itself: on a local node (a fork, or a devnet), apply each containment and try the users' calls.

For every containment: snapshot, impersonate its sender (the guardian, a Safe) and apply its calls,
then try each call that succeeded with nothing contained, each on its own snapshot (send, read the
holders' balances, revert); revert the containment. The node's state is the same at the end as at
the start. Senders are impersonated (anvil's ``anvil_impersonateAccount``) and given gas money.

A containment's reach is the contracts where it refused something: a call that still moves value out
of one of those is a gap (a withdraw path the pause forgot next to the one it guards), flagged; value
leaving through contracts it never touched is listed, not flagged (a market pause is not meant to
stop the other markets). A block is judged on its subject's own calls only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from breakglass.config.deployment import ContractRecord
from breakglass.coverage.actions import Containment
from breakglass.coverage.node import Node, RpcRefusal
from breakglass.coverage.probes import Probe, from_history, generated, signature_of, state_changing
from breakglass.coverage.report import Attempt, ContainmentResult, CoverageReport, FunctionVerdict
from breakglass.respond.calls import type_of

__all__ = [
    "AuditOptions",
    "ValueScope",
    "erc20_contracts",
    "error_names",
    "run_audit",
]

_BALANCE_OF = bytes(function_signature_to_4byte_selector("balanceOf(address)"))
_TOTAL_SUPPLY = "0x" + bytes(function_signature_to_4byte_selector("totalSupply()")).hex()
_GAS_MONEY = hex(10**24)
_GAS_LIMIT = hex(10_000_000)
_UNCLEAN = "reverted in its block"
_CUSTOM = re.compile(r"custom error (0x[0-9a-fA-F]{8})(:\s*[^)]*)?")


@dataclass(frozen=True, slots=True)
class AuditOptions:
    history_blocks: int = 256
    """How many of the newest blocks are searched for real calls to replay."""
    per_function: int = 3
    """Distinct real calls kept per function."""
    budget: int = 12
    """Generated calls at most per function, tried after the real ones until ``keep`` of them work."""
    keep: int = 3
    """Calls kept per function once they succeed with nothing contained (the ones tried under each)."""
    senders: tuple[str, ...] = ()
    """Accounts to send generated calls from first (known users: depositors, traders, whales on a
    fork), before the busiest senders of the history."""


@dataclass(frozen=True, slots=True)
class ValueScope:
    """Where value is measured: tokens (name -> address; ``ETH`` is the native coin) held by the
    holders, and tokens whose new supply is value out (``minted``: a synth or stablecoin the protocol
    mints to pay, such as Synthetix's sUSD, where a withdrawal mints rather than transfers)."""

    tokens: Mapping[str, str]
    holders: Mapping[str, str]
    minted: Mapping[str, str] = field(default_factory=dict)


def erc20_contracts(contracts: Mapping[str, ContractRecord]) -> dict[str, str]:
    """The configured contracts whose ABI is a token's (``balanceOf``, ``transfer``, ``totalSupply``)."""
    tokens: dict[str, str] = {}
    for name, record in contracts.items():
        names = {e.get("name") for e in record.abi if e.get("type") == "function"}
        if {"balanceOf", "transfer", "totalSupply"} <= names:
            tokens[name] = to_checksum_address(record.address)
    return tokens


def error_names(contracts: Mapping[str, ContractRecord]) -> dict[str, tuple[str, list[str]]]:
    """Custom errors of the ABIs by selector (``0xd74502be`` -> ``MarketIsPaused``, its argument
    types): reasons people read."""
    names: dict[str, tuple[str, list[str]]] = {}
    for record in contracts.values():
        for entry in record.abi:
            if entry.get("type") == "error":
                types = [type_of(i) for i in entry.get("inputs", [])]
                signature = f"{entry['name']}({','.join(types)})"
                selector = "0x" + bytes(function_signature_to_4byte_selector(signature)).hex()
                names[selector] = (str(entry["name"]), types)
    return names


def _named(errors: Mapping[str, tuple[str, list[str]]], selector: str, data: str | None) -> str | None:
    known = errors.get(selector.lower())
    if known is None:
        return None
    name, types = known
    if data and data.lower().startswith(selector.lower()):
        try:
            values = decode(types, bytes.fromhex(data[10:]))
            return f"{name}({', '.join(str(v) for v in values)})"
        except Exception:  # noqa: S110 - a revert's data that does not decode: the name alone
            pass
    return f"{name}({','.join(types)})"


def _stand_in(working: Mapping[str, list[Probe]], took: Mapping[str, set[str]]) -> str | None:
    """Who stands for the attacker an action blocks: the sender whose own calls took value out through
    the most functions (then: called the most), with nothing contained. A block is then tried on
    someone who had value to take, not on a bot with one function to call."""
    calls: dict[str, set[str]] = {}
    for function, probes in working.items():
        for probe in probes:
            calls.setdefault(probe.sender, set()).add(function)
    if not calls:
        return None
    return max(calls, key=lambda s: (len(took.get(s, ())), len(calls[s])))


class _Runner:
    def __init__(self, node: Node, scope: ValueScope, errors: Mapping[str, tuple[str, list[str]]]) -> None:
        self.node = node
        self.errors = errors
        # (measure, sign, read): a measure falls by value out (balances, sign 1) or rises (supply, -1)
        self._reads: list[tuple[str, int, tuple[str, list[object]]]] = []
        for token, address in scope.tokens.items():
            for holder in scope.holders.values():
                if token == "ETH":  # noqa: S105 - the native coin's name, not a secret
                    self._reads.append((token, 1, ("eth_getBalance", [holder, "latest"])))
                else:
                    data = "0x" + (_BALANCE_OF + encode(["address"], [holder])).hex()
                    self._reads.append((token, 1, ("eth_call", [{"to": address, "data": data}, "latest"])))
        for token, address in scope.minted.items():
            supply: tuple[str, list[object]] = (
                "eth_call",
                [{"to": address, "data": _TOTAL_SUPPLY}, "latest"],
            )
            self._reads.append((f"{token} minted", -1, supply))
        self._signs = {measure: sign for measure, sign, _ in self._reads}
        self._ready: set[str] = set()

    def ready(self, sender: str) -> None:
        if sender in self._ready:
            return
        self.node.call("anvil_impersonateAccount", sender)
        self.node.call("anvil_setBalance", sender, _GAS_MONEY)
        self._ready.add(sender)

    def holdings(self, *, strict: bool = True) -> dict[str, int]:
        """Each measure's total now; with ``strict=False`` a measure one of whose reads fails is left
        out (a call that broke a token's ``balanceOf`` must not read as all its value gone)."""
        totals = dict.fromkeys(self._signs, 0)
        results = self.node.batch([read for _, _, read in self._reads], strict=strict)
        for (measure, _, _), raw in zip(self._reads, results, strict=True):
            if raw is None:
                totals.pop(measure, None)
            elif measure in totals:
                totals[measure] += int(raw, 16) if raw != "0x" else 0
        return totals

    def outflow(self, before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
        moved = {m: (before[m] - after[m]) * self._signs[m] for m in before if m in after}
        return {m: amount for m, amount in moved.items() if amount > 0}

    def reason(self, refusal: RpcRefusal) -> str:
        named = _CUSTOM.sub(
            lambda m: _named(self.errors, m.group(1), refusal.data) or m.group(1), str(refusal)
        )
        return " ".join(named.split()) or "reverted"

    def send(self, sender: str, to: str, data: str, value: int = 0) -> str:
        """Send and mine; '' when it succeeded, else the revert reason."""
        self.ready(sender)
        # a generous fixed gas limit: an estimate that falls short would read as a refusal
        tx = {"from": sender, "to": to, "data": data, "value": hex(value), "gas": _GAS_LIMIT}
        try:  # a call first: a revert's reason comes back with it, and a refused call costs no block
            self.node.call("eth_call", tx, "latest")
            tx_hash = self.node.call("eth_sendTransaction", tx)
        except RpcRefusal as exc:
            return self.reason(exc)
        receipt = self.node.call("eth_getTransactionReceipt", tx_hash)
        if receipt is None:
            self.node.call("evm_mine")
            receipt = self.node.call("eth_getTransactionReceipt", tx_hash)
        return "" if receipt and int(receipt["status"], 16) == 1 else _UNCLEAN

    def attempt(self, probe: Probe, before: Mapping[str, int]) -> Attempt:
        snapshot = self.node.call("evm_snapshot")
        try:
            reason = self.send(probe.sender, probe.address, probe.data, probe.value)
            outflow: dict[str, int] = {}
            if not reason:
                after = self.holdings(strict=False)
                outflow = self.outflow(before, after)
                if len(after) < len(before):
                    unread = ", ".join(m for m in before if m not in after)
                    reason = f"succeeded, and left {unread} unreadable"
                    return Attempt(probe.describe(), probe.source, True, reason, outflow, probe.sender)
            return Attempt(probe.describe(), probe.source, not reason, reason, outflow, probe.sender)
        finally:
            self.node.call("evm_revert", snapshot)


def run_audit(
    node: Node,
    *,
    config: str,
    targets: Mapping[str, ContractRecord],
    plan: Callable[[str | None], tuple[Sequence[Containment], Sequence[str]]],
    scope: ValueScope,
    options: AuditOptions,
    history: Sequence[Probe] | None = None,
    forked: bool = True,
    errors: Mapping[str, tuple[str, list[str]]] | None = None,
) -> CoverageReport:
    """Audit the containments ``plan`` gives against calls to ``targets``' state-changing functions.

    ``plan(stand_in)`` returns the containments and the actions it could not audit (one line each);
    ``stand_in`` is the account chosen to stand for the finding's attacker. ``history`` is the
    replayable calls when the caller already read them (``from_history``)."""
    runner = _Runner(node, scope, errors if errors is not None else error_names(targets))
    real = (
        list(history)
        if history is not None
        else from_history(node, targets, options.history_blocks, options.per_function)
    )
    # generated calls for every function, tried after the real ones: they stop once a function has
    # ``keep`` working calls, and give the functions one sender used in history some other senders
    busiest = [s for s, _ in Counter(p.sender for p in real).most_common(3)]
    senders = list(dict.fromkeys([*(to_checksum_address(s) for s in options.senders), *busiest]))
    made = generated(targets, set(), senders, options.budget)
    base = node.call("evm_snapshot")
    try:
        start = runner.holdings()
        working: dict[str, list[Probe]] = {}
        baseline_out: set[str] = set()
        took: dict[str, set[str]] = {}
        for probe in [*real, *made]:
            function = f"{probe.contract}.{probe.function}"
            if len(working.get(function, [])) >= options.keep:
                continue
            attempt = runner.attempt(probe, start)
            if attempt.ok:
                working.setdefault(function, []).append(probe)
                if attempt.outflow:
                    baseline_out.add(function)
                    took.setdefault(probe.sender, set()).add(function)
        every = [f"{name}.{signature_of(e)}" for name, r in targets.items() for e in state_changing(r.abi)]
        untested = tuple(f for f in every if f not in working)
        containments, skipped = plan(_stand_in(working, took))
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


def _contain(
    node: Node, runner: _Runner, containment: Containment, working: Mapping[str, list[Probe]]
) -> ContainmentResult:
    snapshot = node.call("evm_snapshot")
    name, kind, playbook = containment.name, containment.kind, containment.playbook
    calls = tuple(c.target for c in containment.calls)
    notes = list(containment.notes)
    try:
        for call in containment.calls:
            reason = runner.send(call.sender, call.address, call.data)
            if reason and containment.kind == "all":  # one playbook's call may be moot after another's
                notes.append(f"{call.target} reverted after the others ({reason}): skipped")
            elif reason:
                error = f"{call.target} from {call.sender}: {reason}"
                return ContainmentResult(name, kind, playbook, calls, False, error, tuple(notes))
        before = runner.holdings()
        tried: dict[str, tuple[Attempt, ...]] = {}
        for function, probes in working.items():
            mine = [p for p in probes if containment.subject in (None, p.sender)]
            if mine:
                tried[function] = tuple(runner.attempt(p, before) for p in mine)
        reach = set()
        for function, attempts in tried.items():
            # the refusals of an account the containment blocks say nothing of the others' paths
            others = (
                attempts
                if containment.subject
                else [a for a in attempts if a.sender not in containment.blocked]
            )
            if not others:
                continue
            # a call the simulation let through but the block reverted is no clean refusal
            if not any(a.ok or a.reason == _UNCLEAN for a in others):
                reach.add(function.split(".")[0])
        verdicts = []
        for function, attempts in tried.items():
            if any(a.ok and a.outflow for a in attempts):
                verdict = "value-out"
            elif any(a.ok for a in attempts):
                verdict = "open"
            else:
                verdict = "refused"
            verdicts.append(FunctionVerdict(function, verdict, attempts, function.split(".")[0] in reach))
        return ContainmentResult(
            name, kind, playbook, calls, True, "", tuple(notes), tuple(verdicts), containment.subject
        )
    finally:
        node.call("evm_revert", snapshot)
