"""Attack-contract simulation: prove a new contract harmful before it strikes.

Most large exploits reach the chain through private order flow, or from a contract deployed blocks
before the strike: there is no pending transaction to simulate. What there is, is the contract. For
every block near the head the follower hands over (``on_block``, never awaited by the block path):

1. the contracts it created, factories included (``discover.py``), and the watched contracts it touched
   again (a call to one, a log naming one: funded, armed, granted a role);
2. those that can reach the protocol, best first: code embedding a protocol address, then a deployer
   the set-up monitor holds tainted, then the rest (``reach``), at most ``max_contracts_per_block``;
3. each one probed (``prober.py``): its dispatcher's selectors (``bytecode.py``) called on the latest
   state from its deployer, its creator and a fresh account, with guessed arguments in rounds of
   increasing cost, then two-call sequences where the first changed something (``probes.py``),
   every caller funded by a state override, each probe followed by the protocol's own actors'
   calls (``followups.py``: a keeper executing the orders the contract created);
4. each post-state judged by the pending-transaction judge (``judge.py``: invariants read before the
   first call and after the last, flows, transaction and event monitors on the last call's logs);
5. a monitor broken at ``min_severity`` is a finding at ``FindingStage.SETUP_PROVEN`` with the proof
   (contract, calls, the monitor's values before and after), published on ``Topics.FINDINGS`` for the
   responder like any other: one alert per contract and monitor (its fingerprint), one breach per
   contract (the playbooks act once on a contract, whichever monitors it breaks).

The follow-up check, a fast lane beside the probes: a block is also handed over as soon as it is
fetched, before the block path evaluates it (``on_fetched``), and each watched contract it touched
that the protocol's own actors will act for (an order of its own the keeper will execute:
``followups.py``) is checked at once with one simulation, those follow-ups alone on the latest state
(``Prober.check_follow_ups``). It waits for no probe, no evaluation and no budget round: the contract
armed in this block is proven before the keeper's next call, not after the probes queued before it
(reentrant-aum in private mode: the keeper executes the armed order within a second of the arming).

Blocks that queued up while a probe ran are examined together, each contract probed once (probes
run on the latest state either way); a probe whose contract a newer block touches is given up for
that block's (as soon as that block is fetched). Budget: simulations per contract and per round, a
timeout per contract, and a code-hash cache (a deployment whose identical code was probed quiet at its
own creation is not probed again until it is touched). Blocks queue up to ``BACKLOG``; older ones are
dropped (counted) so a flood of deployments delays only this stage, never the block path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.crypto import keccak

from breakglass.bus import Bus, Topics
from breakglass.chain.rpc import RpcClient
from breakglass.config.attack import AttackSimulationConfig
from breakglass.detect.setup import address_words
from breakglass.domain import Block, Finding
from breakglass.errors import ChainError
from breakglass.logs import get_logger
from breakglass.metrics import (
    ATTACK_PROBE_SECONDS,
    ATTACK_PROBES,
    ATTACK_SIMULATIONS,
    ATTACK_SKIPPED,
    FINDINGS,
)
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.bytecode import embedded_addresses, selectors
from breakglass.simulate.discover import Created, CreationFinder
from breakglass.simulate.followups import FollowUps
from breakglass.simulate.funding import BalanceSlots
from breakglass.simulate.judge import Judge
from breakglass.simulate.prober import Prober, Watched

__all__ = ["AttackSimulator", "AttackStats", "probe_address", "tainted_by"]

log = get_logger(__name__)

BACKLOG = 64
"""Blocks waiting for this stage; beyond it the oldest are dropped."""
MAX_WATCHED = 4096
"""Contracts watched at once (the oldest forgotten first)."""
ON_DEMAND_SLACK = 10
"""``probe_address`` (a person asking) allows this many times the per-contract ``timeout``."""


@dataclass
class AttackStats:
    blocks: int = 0
    dropped_blocks: int = 0
    created: int = 0
    probed: int = 0
    """probe runs (a contract at its creation, or again when touched)"""
    superseded: int = 0
    """probe runs given up because a newer block touched their contract (probed again on it)"""
    skipped_budget: int = 0
    skipped_cached: int = 0
    timeouts: int = 0
    simulations: int = 0
    proven: int = 0
    errors: int = 0
    cost_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """wall time of each probe run"""


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
        funds: Mapping[str, int] | None = None,
        follow_ups: FollowUps | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``protocol``: name -> address of the protocol's contracts (never probed themselves);
        ``tainted``: whether an account is tainted (the set-up monitor's view); ``funds``: token
        address -> amount each probed contract holds in the simulation (``funding.py``);
        ``follow_ups``: the protocol's own actors' calls after each probe (``followups.py``)."""
        self.rpc = rpc
        self.judge = judge
        self.settings = settings
        self.protocol = {a.lower() for a in protocol.values()}
        self.bus = bus
        self.finder = finder or CreationFinder(rpc, method=settings.trace)
        self.tainted = tainted or (lambda _a: False)
        self.prober = Prober(
            batcher or RpcBatcher(rpc),
            judge,
            settings,
            protocol=list(protocol.values()),
            funding=BalanceSlots(rpc, funds) if funds else None,
            follow_ups=follow_ups,
        )
        self.follow_ups = follow_ups
        self.watched: OrderedDict[str, Watched] = OrderedDict()
        self.stats = AttackStats()
        self._quiet_codes: set[str] = set()
        self._blocks: deque[Block] = deque()
        self._wake = asyncio.Event()
        self._probing: str | None = None
        """the contract being probed: a newer block touching it supersedes the probe"""
        self._superseded = asyncio.Event()
        self._urgent: deque[Block] = deque()
        """blocks fetched whose touched contracts have follow-ups to check (``on_fetched``)"""
        self._urgent_wake = asyncio.Event()
        self._clock = clock

    # ---- the block path's side: never blocks it

    def on_block(self, block: Block) -> None:
        """A block the engine handled (``DetectionEngine.block_listeners``): queued for ``run``."""
        if not block.transactions:
            return
        if len(self._blocks) >= BACKLOG:
            self._blocks.popleft()
            self.stats.dropped_blocks += 1
            ATTACK_SKIPPED.labels("block").inc()
        self._blocks.append(block)
        self._wake.set()
        if self._probing is not None and self._probing in self._touched(block):
            self._superseded.set()  # its state changed: a probe of the older state is wasted time

    def on_fetched(self, block: Block) -> None:
        """A block near the head as it arrives, before the engine evaluates it
        (``DetectionEngine.early_listeners``): the follow-ups its logs ask for are remembered, a probe
        of a contract it touched is given up (its state changed), and the watched contracts it touched
        that have follow-ups are queued for the follow-up check (``run``'s fast lane)."""
        if not block.transactions or not self.watched:
            return
        touched = self._touched(block)
        if not touched:
            return
        if self._probing is not None and self._probing in touched:
            self._superseded.set()
        if self.follow_ups:
            self.follow_ups.remember(block, self.watched.__contains__)
            if any(self.follow_ups.calls(a) for a in touched):
                if len(self._urgent) >= BACKLOG:
                    self._urgent.popleft()
                self._urgent.append(block)
                self._urgent_wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Examine queued blocks (and check the fetched ones' follow-ups, beside) until ``stop`` is set
        (or cancelled)."""
        stop = stop or asyncio.Event()
        checks = asyncio.ensure_future(
            self._drain(stop, self._urgent, self._urgent_wake, self.check_follow_ups, "follow-up check")
        )
        try:
            await self._drain(stop, self._blocks, self._wake, self.examine, "attack simulation")
        finally:
            checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checks

    async def _drain(
        self,
        stop: asyncio.Event,
        queue: deque[Block],
        wake: asyncio.Event,
        handle: Callable[..., Awaitable[object]],
        what: str,
    ) -> None:
        """Hand every block waiting in ``queue`` to ``handle`` at once, then wait for more (``wake``):
        probes run on the latest state, so a contract touched in several of them is probed once, and
        the newest state is reached sooner. A node error is counted and logged; the loop goes on."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if not queue:
                    wake.clear()
                    waking = asyncio.ensure_future(wake.wait())
                    await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
                    continue
                blocks = list(queue)
                queue.clear()
                try:
                    await handle(*blocks)
                except ChainError as exc:
                    self.stats.errors += 1
                    log.warning(f"{what} of blocks failed", blocks=[b.number for b in blocks], error=str(exc))
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    # ---- one block

    async def examine(self, block: Block, *more: Block) -> list[Finding]:
        """Discover, choose and probe the contracts of ``block`` (and of the ``more`` blocks after it,
        each contract once) within the budget; publish the findings."""
        blocks = (block, *more)
        self.stats.blocks += len(blocks)
        if self.prober.unsupported:
            return []  # said once when found out (``Prober``)
        created = [c for b in blocks[:1] for c in await self.finder.created(b)]  # (the method found once)
        for more_created in await asyncio.gather(*(self.finder.created(b) for b in blocks[1:])):
            created += more_created
        fresh = await self._watch(created)
        if self.follow_ups:
            for b in blocks:
                self.follow_ups.remember(b, self.watched.__contains__)
        newest = blocks[-1]
        targets: list[tuple[Watched, str]] = []
        for w in fresh:
            if w.code_hash in self._quiet_codes:
                self.stats.skipped_cached += 1
                ATTACK_SKIPPED.labels("cached").inc()
                continue
            targets.append((w, "created"))
        new = {w.address for w in fresh}
        for address in dict.fromkeys(a for b in blocks for a in self._touched(b)):
            known = self.watched.get(address)
            if known is None or address in new or known.proven:
                continue
            if (
                newest.number - known.created_in > self.settings.watch_blocks
                or known.probes > self.settings.max_reprobes
            ):
                continue
            targets.append((known, "touched"))
        targets = [t for t in targets if self._reaches(t[0])]
        targets.sort(key=lambda t: -t[0].priority)
        if len(targets) > self.settings.max_contracts_per_block:
            self.stats.skipped_budget += len(targets) - self.settings.max_contracts_per_block
            ATTACK_SKIPPED.labels("contract").inc(len(targets) - self.settings.max_contracts_per_block)
            targets = targets[: self.settings.max_contracts_per_block]
        budget = self.settings.max_simulations_per_block
        found: list[Finding] = []
        for w, reason in targets:
            if budget <= 0:
                self.stats.skipped_budget += 1
                ATTACK_SKIPPED.labels("contract").inc()
                continue
            spent, mine = await self._probe_within(
                w, reason, min(budget, self.settings.max_simulations_per_contract), newest.number
            )
            budget -= spent
            found += mine
        await self._publish(found)
        return found

    # ---- the fast lane: follow-ups alone, on the latest state

    async def check_follow_ups(self, block: Block, *more: Block) -> list[Finding]:
        """The follow-up check of the watched contracts ``block`` (and ``more``) touched: for each
        with follow-ups (not proven, still watched), one simulation of those follow-ups alone on the
        latest state, all at once; publish the findings. At most ``max_contracts_per_block``
        contracts, best first; not counted in the probes' per-block budget (one simulation each)."""
        if self.prober.unsupported or not self.follow_ups:
            return []
        newest = (block, *more)[-1]
        targets: list[Watched] = []
        for address in dict.fromkeys(a for b in (block, *more) for a in self._touched(b)):
            w = self.watched.get(address)
            if w is None or w.proven or newest.number - w.created_in > self.settings.watch_blocks:
                continue
            if self._reaches(w) and self.follow_ups.calls(address):
                targets.append(w)
        targets.sort(key=lambda w: -w.priority)
        if len(targets) > self.settings.max_contracts_per_block:
            skipped = len(targets) - self.settings.max_contracts_per_block
            self.stats.skipped_budget += skipped
            ATTACK_SKIPPED.labels("contract").inc(skipped)
            targets = targets[: self.settings.max_contracts_per_block]
        found: list[Finding] = []
        for mine in await asyncio.gather(*(self._check_within(w) for w in targets)):
            found += mine
        await self._publish(found)
        return found

    async def _check_within(self, w: Watched) -> list[Finding]:
        started = self._clock()
        spent = [0]
        outcome = "quiet"
        found: list[Finding] = []
        try:
            async with asyncio.timeout(self.settings.timeout):
                found = await self.prober.check_follow_ups(w, spent)
        except TimeoutError:
            outcome = "timeout"
            self.stats.timeouts += 1
        elapsed = (self._clock() - started) * 1000
        self.stats.simulations += spent[0]
        ATTACK_SIMULATIONS.inc(spent[0])
        if found and w.proven:
            found = []  # a probe proved it meanwhile: published once
        ATTACK_PROBES.labels("proven" if found else outcome, "follow-up").inc()
        if found:
            self._mark_proven(w, found, "follow-up", spent[0], elapsed)
            if self._probing == w.address:
                self._superseded.set()  # nothing left to prove: the probe of it ends
        return found

    def _mark_proven(self, w: Watched, found: Sequence[Finding], reason: str, spent: int, ms: float) -> None:
        w.proven = True
        self.stats.proven += 1
        log.warning(
            "new contract proven to break the protocol's monitors",
            contract=w.address,
            deployer=w.origin,
            monitors=sorted({f.monitor_id for f in found}),
            reason=reason,
            simulations=spent,
            ms=round(ms, 1),
        )

    async def _publish(self, found: Sequence[Finding]) -> None:
        for finding in found:
            if self.bus is not None:
                await self.bus.publish(Topics.FINDINGS, finding)
            FINDINGS.labels(finding.monitor_id, finding.severity.name.lower(), finding.stage.value).inc()

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
                embedded=embedded_addresses(raw, self.prober.protocol_order),
                tainted=self.tainted(c.origin) or bool(c.creator and self.tainted(c.creator)),
            )
            self.watched[w.address] = w
            out.append(w)
        while len(self.watched) > MAX_WATCHED:
            gone, _ = self.watched.popitem(last=False)
            if self.follow_ups:
                self.follow_ups.forget(gone)
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
                seen.update(dict.fromkeys(address_words(entry.topics, entry.data, small=True)))
        return [a for a in seen if a in self.watched]

    # ---- one contract

    async def _probe_within(
        self, w: Watched, reason: str, budget: int, newest: int
    ) -> tuple[int, list[Finding]]:
        started = self._clock()
        w.probes += 1
        self.stats.probed += 1
        spent = [0]
        outcome = "quiet"
        self._probing = w.address
        self._superseded.clear()
        if any(b.number > newest and w.address in self._touched(b) for b in self._blocks):
            self._superseded.set()  # a block queued meanwhile touched it: probed on that one
        probe = asyncio.ensure_future(self.prober.probe(w, budget, spent))
        superseded = asyncio.ensure_future(self._superseded.wait())
        try:
            done, _ = await asyncio.wait(
                {probe, superseded}, timeout=self.settings.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._probing = None
            superseded.cancel()
            if not probe.done():
                probe.cancel()
                with contextlib.suppress(asyncio.CancelledError, ChainError):
                    await probe
        found: list[Finding] = []
        if probe in done:
            found = [] if w.proven else probe.result()  # (proven meanwhile by its follow-up check)
        elif superseded in done:
            # the next round probes it again, on the block that touched it (within max_reprobes: a
            # contract touched in every block cannot keep this stage busy)
            outcome = "superseded"
            self.stats.superseded += 1
        else:
            self.stats.timeouts += 1
            outcome = "timeout"
            log.warning("attack simulation ran out of time", contract=w.address, simulations=spent[0])
        elapsed = (self._clock() - started) * 1000
        self.stats.simulations += spent[0]
        self.stats.cost_ms.append(elapsed)
        ATTACK_SIMULATIONS.inc(spent[0])
        ATTACK_PROBE_SECONDS.observe(elapsed / 1000)
        ATTACK_PROBES.labels("proven" if found else outcome, reason).inc()
        if found:
            self._mark_proven(w, found, reason, spent[0], elapsed)
        elif reason == "created" and outcome == "quiet" and not w.proven:
            self._quiet_codes.add(w.code_hash)
        return spent[0], found


async def probe_address(
    simulator: AttackSimulator, address: str, callers: Sequence[str] = ()
) -> list[Finding]:
    """Probe one deployed contract now, on the latest state, within one contract's budget
    (``breakglass test-contract``): ``callers`` stand for its deployer and creator (the first two;
    a fresh account is always tried). Publishes nothing; raises ``ChainError`` if it has no code."""
    code = await simulator.rpc.call("eth_getCode", address, "latest")
    if not isinstance(code, str) or code in ("0x", "0x0"):
        raise ChainError(f"{address} has no code at the latest block")
    raw = bytes.fromhex(code[2:])
    number = int(await simulator.rpc.call("eth_blockNumber"), 16)
    who = [c.lower() for c in callers]
    w = Watched(
        address=address.lower(),
        creator=who[1] if len(who) > 1 else (who[0] if who else ""),
        origin=who[0] if who else "",
        created_in=number,
        code_hash="0x" + keccak(raw).hex(),
        selectors=selectors(raw),
        embedded=embedded_addresses(raw, simulator.prober.protocol_order),
    )
    simulator.watched[w.address] = w
    budget = simulator.settings.max_simulations_per_contract
    # no block path to keep up with here: a person waits, the node may be slow
    async with asyncio.timeout(simulator.settings.timeout * ON_DEMAND_SLACK):
        return await simulator.prober.probe(w, budget)


def tainted_by(detectors: Iterable[Any]) -> Callable[[str], bool]:
    """Whether an account is tainted, as the configured set-up monitors see it."""
    from breakglass.detect.setup import SetupDetector

    setups = [d for d in detectors if isinstance(d, SetupDetector)]
    return lambda address: any(d.tainted(address) for d in setups)
