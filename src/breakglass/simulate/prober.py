"""One contract's probe: which calls, in which order, on the latest state, and how a proof is made.

``Prober.probe(watched, budget)`` calls the contract's selectors in rounds of increasing argument
cost (``probes.py``), from its deployer, its creator and a fresh account (the sets derived from what
the contract holds, from its deployer alone: ``_holdings``); after the second round, the
two-call sequences (a call that changed something, then each selector from the same caller). Every
sequence is followed, in the same bundle, by the protocol's own actors' calls (``followups.py``). Each
simulation's post-state goes to the pending-transaction judge (``judge.py``); the first that breaks a
monitor at ``min_severity`` ends the probe, and its findings are re-made as proofs: stage
``setup-proven``, the calls and the monitor's values in ``evidence``, one breach per contract.

``Prober.check_follow_ups(watched)`` is the one-simulation check of the fast lane (``attack.py``):
none of the contract's own calls (a no-op stands first in the bundle), then its follow-ups, on the
latest state: what the protocol's own actors are about to do for it, proven harmful before they do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from breakglass.config.attack import AttackSimulationConfig
from breakglass.domain import Address, Finding, FindingStage, Hash32, PendingTx, Severity, Tx, fingerprint_of
from breakglass.errors import ChainError, RpcError
from breakglass.logs import get_logger
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.followups import FollowUps
from breakglass.simulate.funding import BalanceSlots
from breakglass.simulate.judge import Judge
from breakglass.simulate.probes import (
    FRESH_CALLER,
    PROBE_GAS,
    PROBE_VALUE,
    CallOutcome,
    ProbeCall,
    argument_sets,
    derived_sets,
    pair_probes,
    parse_probe,
    probe_params,
)
from breakglass.simulate.request import SimulatedBlock

__all__ = ["MAX_ADDRESS_GUESSES", "Prober", "Watched"]

log = get_logger(__name__)

_BALANCE_OF = bytes.fromhex("70a08231")
MAX_ADDRESS_GUESSES = 16
"""Protocol addresses tried as arguments: those the code does not embed first (a contract takes as an
argument what it does not already know: the markets to drain, say)."""
MAX_DERIVED = 32
"""Argument lists derived from the contract's holdings tried per probe (``derived_sets``), from its
deployer only (a call that works from anyone works from it; an attack contract is owner-only)."""
MAX_PREPARED = 8
"""First calls of two-call sequences kept per contract."""
NO_CALL = ProbeCall(FRESH_CALLER, FRESH_CALLER, b"")
"""The no-op that stands for "none of the contract's own calls" in a follow-up check (a call to an
account without code: it succeeds and changes nothing)."""


@dataclass
class Watched:
    """A contract created near the head, kept for ``watch_blocks`` to be probed again when touched."""

    address: str
    creator: str
    origin: str
    created_in: int
    code_hash: str
    selectors: tuple[bytes, ...]
    embedded: list[str]
    tainted: bool = False
    probes: int = 0
    proven: bool = False

    @property
    def priority(self) -> int:
        return 2 * bool(self.embedded) + bool(self.tainted)


class Prober:
    """Probes one contract at a time within a budget. Constructed with no I/O."""

    def __init__(
        self,
        batcher: RpcBatcher,
        judge: Judge,
        settings: AttackSimulationConfig,
        *,
        protocol: Sequence[str],
        funding: BalanceSlots | None = None,
        follow_ups: FollowUps | None = None,
    ) -> None:
        """``funding``: the token balances each probed contract is given (``funding.py``);
        ``follow_ups``: the protocol's own actors' calls after each probe (``followups.py``)."""
        self.batcher = batcher
        self.follow_ups = follow_ups
        self.funding = funding
        self.judge = judge
        self.settings = settings
        self.protocol_order = [a.lower() for a in protocol]
        self.min_severity = Severity.parse(settings.min_severity)
        self.unsupported = False
        """the node answered eth_simulateV1 with 'method not found': probing stops"""

    async def probe(self, w: Watched, budget: int, spent: list[int] | None = None) -> list[Finding]:
        """Call ``w``'s selectors (then pairs) on the latest state until a monitor breaks or
        ``budget`` simulations are spent (counted in ``spent[0]``); the findings that prove harm
        (empty: none seen)."""
        spent = spent if spent is not None else [0]
        callers = list(dict.fromkeys(a for a in (w.origin, w.creator, FRESH_CALLER) if a))
        others = [a for a in self.protocol_order if a not in w.embedded]
        guesses = [*others, *w.embedded][:MAX_ADDRESS_GUESSES]
        overrides: dict[str, dict[str, Any]] = {}
        if self.funding is not None:
            await self.funding.find()
            overrides = self.funding.overrides(w.address)
        amounts = [a for t, a in self.funding.funds.items() if t in overrides] if self.funding else []
        args = argument_sets(guesses, amounts)
        rounds: list[list[bytes]] = [[a] for a in args]
        # after the funded amounts, before the protocol addresses alone, in one round (its simulations
        # sent ``concurrency`` at a time): sets built from what the contract holds, from its deployer
        # only (none for a contract that holds nothing); read when that round comes, so that a proof
        # in the first rounds waits for nothing
        derived_at = 2 + len(amounts)
        rounds.insert(derived_at, [])
        done: set[bytes] = set()
        """selectors not worth calling with arguments: getters, and calls that worked without any"""
        prepared: list[ProbeCall] = []
        # rounds of single calls, cheapest arguments first; the two-call sequences after the second
        # round (no arguments, zero words): an arm-then-fire contract needs none, most often
        for k in range(len(rounds) + 1):
            if k == 2:
                strikes = [
                    ProbeCall(c, w.address, s + encoded)
                    for encoded in args[:2]
                    for s in w.selectors
                    if s not in done or encoded == b""
                    for c in callers
                ]
                pairs = pair_probes(prepared, strikes, self.settings.max_pairs)
                for _seq, outcome in await self._run(w, [list(p) for p in pairs], budget, spent, overrides):
                    if isinstance(outcome, list):
                        return outcome
            if k == len(rounds):
                break
            if k == derived_at and not (self.follow_ups and self.follow_ups.calls(w.address)):
                # (none for a contract the protocol's own actors act for: its follow-ups judge it)
                holdings = await self._holdings(w, [*self.protocol_order, *w.embedded], overrides)
                derived = derived_sets(guesses, holdings, leverage=self.settings.leverage)
                rounds[k] = derived[:MAX_DERIVED]
            calls: list[ProbeCall] = []
            if k == 0:
                calls += [ProbeCall(c, w.address, b"", PROBE_VALUE) for c in callers]
            who = callers[:1] if k == derived_at else callers
            for encoded in rounds[k]:
                for selector in w.selectors:
                    if selector not in done:
                        calls += [ProbeCall(c, w.address, selector + encoded) for c in who]
            for seq, outcome in await self._run(w, [[c] for c in calls], budget, spent, overrides):
                if isinstance(outcome, list):
                    return outcome  # proven
                if outcome is None or not outcome.ok:
                    continue
                call = seq[0]
                if k == 0 and call.data:
                    done.add(call.selector)
                changed = not outcome.returned or outcome.logs
                if changed and len(prepared) < MAX_PREPARED and call not in prepared:
                    prepared.append(call)
            if spent[0] >= budget or self.unsupported:
                return []
        return []

    async def check_follow_ups(self, w: Watched, spent: list[int] | None = None) -> list[Finding]:
        """One simulation: ``w``'s follow-ups alone (no call of its own) on the latest state, as its
        probes' overrides fund it; the findings that prove harm (empty: none, or no follow-ups)."""
        follow = self.follow_ups.calls(w.address) if self.follow_ups else []
        if not follow:
            return []
        spent = spent if spent is not None else [0]
        overrides: dict[str, dict[str, Any]] = {}
        if self.funding is not None:
            await self.funding.find()
            overrides = self.funding.overrides(w.address)
        for _seq, _calls, outcome in await self._simulate(w, [([NO_CALL], follow)], spent, overrides):
            if isinstance(outcome, list):
                return outcome
        return []

    async def _holdings(
        self, w: Watched, tokens: Sequence[str], overrides: dict[str, dict[str, Any]]
    ) -> list[int]:
        """``w``'s balance of each of ``tokens`` that answers ``balanceOf`` (funded ones included), on
        the latest state: one batch of ``eth_call``s, not counted as simulations. Nonzero ones only."""
        data = "0x" + (_BALANCE_OF + bytes.fromhex(w.address[2:]).rjust(32, b"\0")).hex()
        todo = list(dict.fromkeys(t.lower() for t in tokens if t.lower() != w.address.lower()))
        if not todo:
            return []
        calls = [
            ("eth_call", ({"to": t, "data": data}, "latest", *([overrides] if overrides else [])))
            for t in todo
        ]
        try:
            answers = await self.batcher.batch(calls)
        except ChainError as exc:
            log.info("holdings not read", contract=w.address, error=str(exc))
            return []
        out: list[int] = []
        for answer in answers:
            if isinstance(answer, str) and answer.startswith("0x") and len(answer) == 66:
                value = int(answer, 16)
                if 0 < value < 2**128:
                    out.append(value)
        return out

    async def _run(
        self,
        w: Watched,
        sequences: Sequence[list[ProbeCall]],
        budget: int,
        spent: list[int],
        overrides: dict[str, dict[str, Any]],
    ) -> list[tuple[list[ProbeCall], CallOutcome | list[Finding] | None]]:
        """Simulate ``sequences`` (``concurrency`` per round trip) within ``budget``, each followed by
        the protocol's follow-ups (``followups.py``); stops at the first that proves harm (its
        findings in place of its outcome). Each sequence's outcome is its last call's, None when it
        could not be simulated. A sequence whose calls emitted a log a follow-up runs for is simulated
        again with that follow-up (one more simulation)."""
        out: list[tuple[list[ProbeCall], CallOutcome | list[Finding] | None]] = []
        follow = self.follow_ups.calls(w.address) if self.follow_ups else []
        step = self.settings.concurrency
        for i in range(0, len(sequences), step):
            room = budget - spent[0]
            if room <= 0:
                break
            chunk = [(list(seq), follow) for seq in sequences[i : i + min(step, room)]]
            again: list[tuple[list[ProbeCall], list[ProbeCall]]] = []
            for seq, calls, outcome in await self._simulate(w, chunk, spent, overrides):
                if isinstance(outcome, list):
                    out.append((seq, outcome))
                    return out
                if outcome is not None and outcome[1] and spent[0] + len(again) < budget:
                    again.append((seq, [*calls, *outcome[1]]))
                out.append((seq, outcome[0] if outcome else None))
            for seq, _calls, outcome in await self._simulate(w, again, spent, overrides):
                if isinstance(outcome, list):
                    out.append((seq, outcome))
                    return out
        return out

    async def _simulate(
        self,
        w: Watched,
        chunk: Sequence[tuple[list[ProbeCall], list[ProbeCall]]],
        spent: list[int],
        overrides: dict[str, dict[str, Any]],
    ) -> list[
        tuple[list[ProbeCall], list[ProbeCall], tuple[CallOutcome, list[ProbeCall]] | list[Finding] | None]
    ]:
        """One round trip: each (sequence, follow-ups) judged; the findings of the first that proves
        harm end the list. Otherwise each sequence's last outcome and the follow-ups its own logs ask
        for that did not run yet."""
        if not chunk:
            return []
        reads = self.judge.reads
        per_log = bool(self.follow_ups and self.follow_ups.per_log)
        answers = await self.batcher.batch(
            [("eth_simulateV1", probe_params(seq, reads, overrides, follow=f)) for seq, f in chunk]
        )
        spent[0] += len(chunk)
        out: list[
            tuple[
                list[ProbeCall], list[ProbeCall], tuple[CallOutcome, list[ProbeCall]] | list[Finding] | None
            ]
        ] = []
        for (seq, follow), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, RpcError) and answer.code == -32601 and not self.unsupported:
                    self.unsupported = True  # no eth_simulateV1 on this node: say it once, loudly
                    log.error(
                        "the node has no eth_simulateV1: attack-contract simulation cannot run",
                        error=str(answer),
                    )
                out.append((seq, follow, None))
                continue
            try:
                sim, outcomes = parse_probe(answer, len(reads), len(seq), len(follow), keep_logs=per_log)
            except ChainError as exc:
                log.info("probe answer not read", error=str(exc))
                out.append((seq, follow, None))
                continue
            if not outcomes[0].ok:
                out.append((seq, follow, (outcomes[-1], [])))
                continue
            found = self._judge(w, seq, sim, overrides, follow) if sim.tx.status == 1 else []
            if found:
                out.append((seq, follow, found))
                return out
            asked: list[ProbeCall] = []
            if per_log and self.follow_ups and sim.tx.status == 1:
                emitted = [entry for o in outcomes for entry in o.emitted]
                for _contract, call in self.follow_ups.from_logs(contract=w.address, logs=emitted):
                    if call not in follow and call not in asked:
                        asked.append(call)
            out.append((seq, follow, (outcomes[-1], asked)))
        return out

    def _judge(
        self,
        w: Watched,
        seq: Sequence[ProbeCall],
        sim: SimulatedBlock,
        overrides: dict[str, Any],
        follow: Sequence[ProbeCall] = (),
    ) -> list[Finding]:
        # a follow-up check's transaction is its actors' last call (the no-op stands for none of its own)
        last = follow[-1] if seq[-1] == NO_CALL and follow else seq[-1]
        tx = Tx(
            hash=Hash32("0x" + fingerprint_of("probe", [c.to_json() for c in seq]) * 2),
            sender=Address(last.sender),
            to=Address(last.to),
            value=last.value,
            input=last.data,
            nonce=0,
            gas=PROBE_GAS,
            max_fee_per_gas=None,
            max_priority_fee_per_gas=None,
            gas_price=None,
            index=0,
        )
        found = self.judge.judge(PendingTx(tx, 0.0), sim, time.time() * 1000)
        funded = {t: a for t, a in (self.funding.funds.items() if self.funding else ()) if t in overrides}
        return [
            self._proven(f, seq, sim, w, funded, follow) for f in found if f.severity >= self.min_severity
        ]

    @staticmethod
    def _proven(
        f: Finding,
        seq: Sequence[ProbeCall],
        sim: SimulatedBlock,
        w: Watched,
        funded: dict[str, int],
        follow: Sequence[ProbeCall] = (),
    ) -> Finding:
        contract = w.address.lower()
        own = [c for c in seq if c != NO_CALL]
        evidence: dict[str, Any] = {
            k: v for k, v in f.evidence.items() if k not in ("pending_fees", "sender", "to")
        }
        evidence.update(
            signal="attack-contract-simulation",
            contract=contract,
            attacker=contract,
            deployer=w.origin,
            creator=w.creator,
            created_in=w.created_in,
            code_hash=w.code_hash,
            calls=[c.to_json() for c in own],
            selector="0x" + own[-1].selector.hex() if own and own[-1].data else None,
            proven_on_block=sim.number - 1,
            funded=funded,
            follow_ups=[c.to_json() for c in follow],
        )
        fingerprint = fingerprint_of("setup-proven", f.monitor_id, f.chain_id, contract, dict(f.labels))
        calls = " then ".join(("0x" + c.selector.hex()) if c.data else "a plain transfer" for c in own)
        if not own:
            calls = (
                "no call of its own: " + ", ".join("0x" + c.selector.hex() for c in follow) + " by its actors"
            )
        return replace(
            f,
            stage=FindingStage.SETUP_PROVEN,
            block_number=sim.number - 1,
            tx_hash=None,
            block_hash=None,
            title=f"contract {contract} proven to break {f.monitor_id} ({calls}, simulated): {f.title}",
            evidence=evidence,
            fingerprint=fingerprint,
            # one breach per contract: the playbooks act once on it, whichever monitors it breaks
            breach="setup-proven-" + fingerprint_of("setup-proven", f.chain_id, contract)[:24],
        )
