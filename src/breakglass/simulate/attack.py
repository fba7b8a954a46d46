"""Attack-contract simulation: prove a new contract harmful before it strikes.

Most large exploits reach the chain through private order flow, or from a contract deployed blocks
before the strike: there is no pending transaction to simulate. What there is, is the contract. For
every block near the head the follower hands over (``on_block``, never awaited by the block path):

1. the contracts it created, factories included (``discover.py``), and the watched contracts it touched
   again (a call to one, a log naming one: funded, armed, granted a role);
2. those that can reach the protocol, best first: code embedding a protocol address, then a deployer
   the set-up monitor holds tainted, then the rest (``reach``), at most ``max_contracts_per_block``;
3. each one's selectors from its dispatcher (``bytecode.py``) called on the latest state from its
   deployer, its creator and a fresh account, with guessed arguments in rounds of increasing cost,
   then two-call sequences where the first changed something (``probes.py``), every caller funded
   by a state override;
4. each post-state judged by the pending-transaction judge (``judge.py``: invariants read before the
   first call and after the last, flows, transaction and event monitors on the last call's logs);
5. a monitor broken at ``min_severity`` is a finding at ``FindingStage.SETUP_PROVEN`` with the proof
   (contract, calls, the monitor's values before and after), published on ``Topics.FINDINGS`` for the
   responder like any other: one alert per contract and monitor (its fingerprint), one breach per
   contract (the playbooks act once on a contract, whichever monitors it breaks).

Budget: simulations per contract and per block, a timeout per contract, and a code-hash cache (a
deployment whose identical code was probed quiet at its own creation is not probed again until it is
touched). Blocks queue up to ``BACKLOG``; older ones are dropped (counted) so a flood of deployments
delays only this stage, never the block path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils.crypto import keccak

from breakglass.bus import Bus, Topics
from breakglass.chain.rpc import RpcClient
from breakglass.config.attack import AttackSimulationConfig
from breakglass.domain import (
    Address,
    Block,
    Finding,
    FindingStage,
    Hash32,
    PendingTx,
    Severity,
    Tx,
    fingerprint_of,
)
from breakglass.errors import ChainError
from breakglass.logs import get_logger
from breakglass.metrics import FINDINGS
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.bytecode import embedded_addresses, selectors
from breakglass.simulate.discover import Created, CreationFinder
from breakglass.simulate.judge import Judge
from breakglass.simulate.probes import (
    FRESH_CALLER,
    PROBE_GAS,
    CallOutcome,
    ProbeCall,
    argument_sets,
    pair_probes,
    parse_probe,
    probe_params,
)
from breakglass.simulate.request import SimulatedBlock

__all__ = ["AttackSimulator", "Watched"]

log = get_logger(__name__)

BACKLOG = 64
"""Blocks waiting for this stage; beyond it the oldest are dropped."""
MAX_WATCHED = 4096
MAX_ADDRESS_GUESSES = 16
"""Protocol addresses tried as arguments: those the code does not embed first (a contract takes as an
argument what it does not already know: the markets to drain, say)."""
MAX_PREPARED = 8


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


@dataclass
class AttackStats:
    blocks: int = 0
    dropped_blocks: int = 0
    created: int = 0
    probed: int = 0
    """probe runs (a contract at its creation, or again when touched)"""
    skipped_budget: int = 0
    skipped_cached: int = 0
    timeouts: int = 0
    simulations: int = 0
    proven: int = 0
    errors: int = 0
    cost_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """wall time of each probe run"""


def _address_words(topics: Sequence[str], data: bytes) -> set[str]:
    words = [bytes.fromhex(t[2:]) for t in topics]
    words += [data[i : i + 32] for i in range(0, len(data) - len(data) % 32, 32)]
    return {"0x" + w[12:].hex() for w in words if len(w) == 32 and w[:12] == bytes(12)}


class AttackSimulator:
    """Probes new contracts against the protocol's monitors. Constructed with no I/O."""

    def __init__(
        self,
        rpc: RpcClient,
        judge: Judge,
        settings: AttackSimulationConfig,
        *,
        protocol: Mapping[str, str],
        bus: Bus | None = None,
        finder: CreationFinder | None = None,
        tainted: Callable[[str], bool] | None = None,
        batcher: RpcBatcher | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``protocol``: name -> address of the protocol's contracts (never probed themselves);
        ``tainted``: whether an account is tainted (the set-up monitor's view)."""
        self.rpc = rpc
        self.judge = judge
        self.settings = settings
        self.protocol = {a.lower() for a in protocol.values()}
        self.protocol_order = [a.lower() for a in protocol.values()]
        self.bus = bus
        self.finder = finder or CreationFinder(rpc, method=settings.trace)
        self.tainted = tainted or (lambda _a: False)
        self.batcher = batcher or RpcBatcher(rpc)
        self.min_severity = Severity.parse(settings.min_severity)
        self.watched: OrderedDict[str, Watched] = OrderedDict()
        self.stats = AttackStats()
        self._quiet_codes: set[str] = set()
        self._blocks: deque[Block] = deque()
        self._wake = asyncio.Event()
        self._clock = clock

    # ---- the block path's side: never blocks it

    def on_block(self, block: Block) -> None:
        """A block the engine handled (``DetectionEngine.block_listeners``): queued for ``run``."""
        if not block.transactions:
            return
        if len(self._blocks) >= BACKLOG:
            self._blocks.popleft()
            self.stats.dropped_blocks += 1
        self._blocks.append(block)
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Examine queued blocks until ``stop`` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not self._blocks:
                    self._wake.clear()
                    waking = asyncio.ensure_future(self._wake.wait())
                    await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
                    continue
                block = self._blocks.popleft()
                try:
                    await self.examine(block)
                except ChainError as exc:
                    self.stats.errors += 1
                    log.warning("attack simulation of a block failed", block=block.number, error=str(exc))
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    # ---- one block

    async def examine(self, block: Block) -> list[Finding]:
        """Discover, choose and probe ``block``'s contracts within the budget; publish the findings."""
        self.stats.blocks += 1
        created = await self.finder.created(block)
        fresh = await self._watch(created)
        targets: list[tuple[Watched, str]] = []
        for w in fresh:
            if w.code_hash in self._quiet_codes:
                self.stats.skipped_cached += 1
                continue
            targets.append((w, "created"))
        new = {w.address for w in fresh}
        for address in self._touched(block):
            known = self.watched.get(address)
            if known is None or address in new or known.proven:
                continue
            if (
                block.number - known.created_in > self.settings.watch_blocks
                or known.probes > self.settings.max_reprobes
            ):
                continue
            targets.append((known, "touched"))
        targets = [t for t in targets if self._reaches(t[0])]
        targets.sort(key=lambda t: -t[0].priority)
        if len(targets) > self.settings.max_contracts_per_block:
            self.stats.skipped_budget += len(targets) - self.settings.max_contracts_per_block
            targets = targets[: self.settings.max_contracts_per_block]
        budget = self.settings.max_simulations_per_block
        found: list[Finding] = []
        for w, reason in targets:
            if budget <= 0:
                self.stats.skipped_budget += 1
                continue
            spent, mine = await self._probe_within(
                w, reason, min(budget, self.settings.max_simulations_per_contract)
            )
            budget -= spent
            found += mine
        for finding in found:
            if self.bus is not None:
                await self.bus.publish(Topics.FINDINGS, finding)
            FINDINGS.labels(finding.monitor_id, finding.severity.name.lower(), finding.stage.value).inc()
        return found

    def _reaches(self, w: Watched) -> bool:
        reach = self.settings.reach
        if reach == "protocol":
            return bool(w.embedded)
        if reach == "tainted":
            return bool(w.embedded) or w.tainted
        return True

    async def _watch(self, created: Sequence[Created]) -> list[Watched]:
        fresh = [c for c in created if c.address not in self.protocol and c.address not in self.watched]
        if not fresh:
            return []
        self.stats.created += len(fresh)
        codes = await self.rpc.batch([("eth_getCode", (c.address, "latest")) for c in fresh], strict=False)
        out: list[Watched] = []
        for c, code in zip(fresh, codes, strict=True):
            if not isinstance(code, str) or code in ("0x", "0x0"):
                continue  # self-destructed in its own transaction, or unreadable
            raw = bytes.fromhex(code[2:])
            w = Watched(
                address=c.address,
                creator=c.creator or c.origin,
                origin=c.origin,
                created_in=c.block_number,
                code_hash="0x" + keccak(raw).hex(),
                selectors=selectors(raw),
                embedded=embedded_addresses(raw, self.protocol_order),
                tainted=self.tainted(c.origin) or bool(c.creator and self.tainted(c.creator)),
            )
            self.watched[w.address] = w
            out.append(w)
        while len(self.watched) > MAX_WATCHED:
            self.watched.popitem(last=False)
        return out

    def _touched(self, block: Block) -> list[str]:
        """Watched contracts ``block`` acted on: called, named in a log, or emitting one."""
        if not self.watched:
            return []
        seen: dict[str, None] = {}
        for tx in block.transactions:
            if tx.receipt is not None and tx.receipt.status != 1:
                continue
            if tx.to is not None:
                seen[tx.to.lower()] = None
            for entry in tx.receipt.logs if tx.receipt else ():
                seen[entry.address.lower()] = None
                seen.update(dict.fromkeys(_address_words(entry.topics[1:], entry.data)))
        return [a for a in seen if a in self.watched]

    # ---- one contract

    async def _probe_within(self, w: Watched, reason: str, budget: int) -> tuple[int, list[Finding]]:
        started = self._clock()
        w.probes += 1
        self.stats.probed += 1
        spent = [0]
        try:
            found = await asyncio.wait_for(self.probe(w, budget, spent), self.settings.timeout)
        except TimeoutError:
            self.stats.timeouts += 1
            log.warning("attack simulation ran out of time", contract=w.address, simulations=spent[0])
            found = []
        elapsed = (self._clock() - started) * 1000
        self.stats.cost_ms.append(elapsed)
        if found:
            w.proven = True
            self.stats.proven += 1
            log.warning(
                "new contract proven to break the protocol's monitors",
                contract=w.address,
                deployer=w.origin,
                monitors=sorted({f.monitor_id for f in found}),
                reason=reason,
                simulations=spent[0],
                ms=round(elapsed, 1),
            )
        elif reason == "created":
            self._quiet_codes.add(w.code_hash)
        return spent[0], found

    async def probe(self, w: Watched, budget: int, spent: list[int] | None = None) -> list[Finding]:
        """Call ``w``'s selectors (then pairs) on the latest state until a monitor breaks or
        ``budget`` simulations are spent; the findings that prove harm (empty: none seen)."""
        spent = spent if spent is not None else [0]
        callers = list(dict.fromkeys(a for a in (w.origin, w.creator, FRESH_CALLER) if a))
        others = [a for a in self.protocol_order if a not in w.embedded]
        guesses = [*others, *w.embedded][:MAX_ADDRESS_GUESSES]
        args = argument_sets(guesses)
        done: set[bytes] = set()
        """selectors not worth calling with arguments: getters, and calls that worked without any"""
        prepared: list[ProbeCall] = []
        # rounds of single calls, cheapest arguments first; the two-call sequences after the second
        # round (no arguments, zero words): an arm-then-fire contract needs none, most often
        for k in range(len(args) + 1):
            if k == 2:
                strikes = [
                    ProbeCall(c, w.address, s + encoded)
                    for encoded in args[:2]
                    for s in w.selectors
                    if s not in done or encoded == b""
                    for c in callers
                ]
                pairs = pair_probes(prepared, strikes, self.settings.max_pairs)
                for _seq, outcome in await self._run([list(p) for p in pairs], budget, spent):
                    if isinstance(outcome, list):
                        return outcome
            if k == len(args):
                break
            encoded = args[k]
            calls: list[ProbeCall] = []
            if k == 0:
                calls += [ProbeCall(c, w.address, b"", 10**18) for c in callers]
            for selector in w.selectors:
                if selector not in done:
                    calls += [ProbeCall(c, w.address, selector + encoded) for c in callers]
            for seq, outcome in await self._run([[c] for c in calls], budget, spent):
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
            if spent[0] >= budget:
                return []
        return []

    async def _run(
        self, sequences: Sequence[list[ProbeCall]], budget: int, spent: list[int]
    ) -> list[tuple[list[ProbeCall], CallOutcome | list[Finding] | None]]:
        """Simulate ``sequences`` (``concurrency`` per round trip) within ``budget``; stops at the
        first that proves harm (its findings in place of its outcome). Each sequence's outcome is
        its last call's, None when it could not be simulated."""
        out: list[tuple[list[ProbeCall], CallOutcome | list[Finding] | None]] = []
        reads = self.judge.reads
        step = self.settings.concurrency
        for i in range(0, len(sequences), step):
            room = budget - spent[0]
            if room <= 0:
                break
            chunk = list(sequences[i : i + min(step, room)])
            answers = await self.batcher.batch(
                [("eth_simulateV1", probe_params(seq, reads)) for seq in chunk]
            )
            spent[0] += len(chunk)
            self.stats.simulations += len(chunk)
            for seq, answer in zip(chunk, answers, strict=True):
                if isinstance(answer, BaseException):
                    out.append((seq, None))
                    continue
                try:
                    sim, outcomes = parse_probe(answer, len(reads), len(seq))
                except ChainError as exc:
                    log.info("probe answer not read", error=str(exc))
                    out.append((seq, None))
                    continue
                if not outcomes[0].ok:
                    out.append((seq, outcomes[-1]))
                    continue
                found = self._judge(seq, sim) if sim.tx.status == 1 else []
                if found:
                    out.append((seq, found))
                    return out
                out.append((seq, outcomes[-1]))
        return out

    # ---- judging

    def _judge(self, seq: Sequence[ProbeCall], sim: SimulatedBlock) -> list[Finding]:
        last = seq[-1]
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
        w = self.watched.get(last.to.lower())
        return [self._proven(f, seq, sim, w) for f in found if f.severity >= self.min_severity]

    def _proven(
        self, f: Finding, seq: Sequence[ProbeCall], sim: SimulatedBlock, w: Watched | None
    ) -> Finding:
        contract = seq[-1].to.lower()
        evidence: dict[str, Any] = {
            k: v for k, v in f.evidence.items() if k not in ("pending_fees", "sender", "to")
        }
        evidence.update(
            signal="attack-contract-simulation",
            contract=contract,
            attacker=contract,
            deployer=w.origin if w else None,
            creator=w.creator if w else None,
            created_in=w.created_in if w else None,
            code_hash=w.code_hash if w else None,
            calls=[c.to_json() for c in seq],
            selector="0x" + seq[-1].selector.hex() if seq[-1].data else None,
            proven_on_block=sim.number - 1,
        )
        fingerprint = fingerprint_of("setup-proven", f.monitor_id, f.chain_id, contract, dict(f.labels))
        calls = " then ".join(("0x" + c.selector.hex()) if c.data else "a plain transfer" for c in seq)
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


def tainted_by(detectors: Iterable[Any]) -> Callable[[str], bool]:
    """Whether an account is tainted, as the configured set-up monitors see it."""
    from breakglass.detect.setup import SetupDetector

    setups = [d for d in detectors if isinstance(d, SetupDetector)]
    return lambda address: any(address.lower() in d.taint for d in setups)
