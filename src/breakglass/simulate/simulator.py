"""The pending-transaction simulator: the mempool watcher's handler, from a pending tx to a verdict.

``handle(pending)`` returns at once (the watcher must keep reading); each new transaction is judged in
its own task, at most ``max_in_flight`` simulations at a time (concurrent ones share JSON-RPC batches,
``batch.py``): relevance (``relevance.py``), one
``eth_simulateV1`` request (``request.py``), the detectors on the post-state (``judge.py``), and the
findings published on ``Topics.FINDINGS`` with ``stage=pending`` for the responder, which outbids the
transaction's fees so that the containment lands first in the same block.

With a ``submit`` function (a bus across machines: ``simulate/worker.py``), ``handle`` hands each new
transaction to the simulate workers' queue instead of judging it here; the judgement is then
``judge_one`` in a worker. Findings are published under their fingerprint as ``dedup`` name: an item
redone after its worker died publishes them once.

A transaction is judged once; a replacement (same sender and nonce, higher priority fee) is judged
again. Caches live for one head: ``new_head`` drops them. The follower tells it every head it learns
(``Follower.head_listeners``: pushed by the subscription); ``run()`` polls the block number only as
a watchdog, when no head was told for ``head_watchdog`` seconds (or every ``head_poll_interval``
seconds when nothing tells it heads).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from breakglass.bus import Bus, Topics
from breakglass.chain.rpc import Call, RpcClient
from breakglass.domain import Finding, PendingTx, Tx
from breakglass.errors import ChainError
from breakglass.logs import get_logger
from breakglass.metrics import FINDINGS, MEMPOOL_SIMULATED, MEMPOOL_SKIPPED, MEMPOOL_VERDICT_SECONDS
from breakglass.simulate.batch import RpcBatcher
from breakglass.simulate.judge import Judge
from breakglass.simulate.relevance import Relevance, RelevanceFilter
from breakglass.simulate.request import parse_simulation, simulation_params

__all__ = ["PendingSimulator", "Verdict"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome for one pending transaction; ``latency_ms`` runs from first seen to this verdict."""

    tx_hash: str
    relevance: Relevance
    findings: tuple[Finding, ...] = ()
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def simulated(self) -> bool:
        return self.relevance.simulate and self.error is None


@dataclass
class SimulatorStats:
    seen: int = 0
    duplicates: int = 0
    skipped: int = 0
    simulated: int = 0
    flagged: int = 0
    errors: int = 0
    included: int = 0
    """simulated too late: already mined when judged (verdict discarded)"""
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


_SKIPPED_DUPLICATE = MEMPOOL_SKIPPED.labels("duplicate")
_SKIPPED_IRRELEVANT = MEMPOOL_SKIPPED.labels("irrelevant")
_SKIPPED_INCLUDED = MEMPOOL_SKIPPED.labels("included")
_SKIPPED_ERROR = MEMPOOL_SKIPPED.labels("error")
_SKIPPED_UNSUPPORTED = MEMPOOL_SKIPPED.labels("unsupported")


def _tip(tx: Tx) -> int:
    return tx.max_priority_fee_per_gas if tx.max_priority_fee_per_gas is not None else tx.gas_price or 0


class PendingSimulator:
    """Judges pending transactions against the protocol's detectors. Constructed with no I/O."""

    def __init__(
        self,
        rpc: RpcClient,
        judge: Judge,
        relevance: RelevanceFilter,
        *,
        bus: Bus | None = None,
        max_in_flight: int = 32,
        head_poll_interval: float = 0.1,
        remember: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        on_verdict: Callable[[Verdict], None] | None = None,
        batcher: RpcBatcher | None = None,
        head_watchdog: float = 5.0,
        submit: Callable[[PendingTx], Awaitable[None]] | None = None,
    ) -> None:
        self.rpc = rpc
        self.batcher = batcher or RpcBatcher(rpc)
        self.judge = judge
        self.relevance = relevance
        self.bus = bus
        self.head_poll_interval = head_poll_interval
        self.on_verdict = on_verdict
        self.stats = SimulatorStats()
        self.head = -1
        self.head_watchdog = head_watchdog
        self.submit = submit
        """Where new transactions go to be judged elsewhere (the work queue); None: judged here."""
        self.submitted = 0
        self._told_at = float("-inf")
        """``clock()`` when a head was last told (``new_head``), by anyone"""
        self.head_polls = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        self._clock = clock
        self._remember = remember
        self._hashes: OrderedDict[str, None] = OrderedDict()
        self._tips: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._tasks: set[asyncio.Task[Verdict]] = set()

    def new_head(self, number: int) -> None:
        """A head learnt elsewhere (the follower, a simulation): drop the previous head's caches."""
        self._told_at = self._clock()
        self._advance(number)

    def _advance(self, number: int) -> None:
        if number > self.head:
            self.head = number
            self.relevance.new_head(number)

    def _first(self, tx: Tx) -> bool:
        """Whether ``tx`` is to be judged: new, or a replacement paying a higher tip than the last judged."""
        if tx.hash in self._hashes:
            return False
        key, tip = (tx.sender.lower(), tx.nonce), _tip(tx)
        judged = self._tips.get(key)
        if judged is not None and tip <= judged:
            return False
        self._hashes[tx.hash] = None
        self._tips[key] = tip
        for memory in (self._hashes, self._tips):
            while len(memory) > self._remember:
                memory.popitem(last=False)
        return True

    async def handle(self, pending: PendingTx) -> None:
        """The ``MempoolWatcher`` handler: starts the judgement and returns."""
        self.stats.seen += 1
        if not self._first(pending.tx):
            self.stats.duplicates += 1
            _SKIPPED_DUPLICATE.inc()
            return
        if self.submit is not None:
            try:
                await self.submit(pending)
                self.submitted += 1
                return
            except Exception as exc:  # the queue is unreachable: judge it here rather than not at all
                log.warning("pending transaction not queued; judged here", tx=pending.tx.hash,
                            error=type(exc).__name__)  # fmt: skip
        task = asyncio.create_task(self.judge_one(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every judgement started so far has its verdict."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def judge_one(self, pending: PendingTx) -> Verdict:
        tx = pending.tx
        try:
            relevance = await self.relevance.classify(tx)
        except ChainError as exc:  # the code lookup failed: judge it rather than let it through
            log.warning("code lookup failed; simulating", tx=tx.hash, error=str(exc))
            relevance = Relevance.CONTRACT
        if not relevance.simulate:
            self.stats.skipped += 1
            _SKIPPED_IRRELEVANT.inc()
            return self._done(Verdict(tx.hash, relevance, latency_ms=self._since(pending)))
        reads = self.judge.reads
        # The sender's nonce, read after the simulation in the same round trip, tells whether the tx
        # was already in the state simulated on (mined meanwhile): judging it again would apply it twice.
        requests: list[Call] = [
            ("eth_simulateV1", simulation_params(tx, reads)),
            ("eth_getTransactionCount", (tx.sender, "latest")),
        ]
        async with self._slots:
            try:
                answer, nonce = await self.batcher.batch(requests)
            except ChainError as exc:  # no endpoint answered at all
                answer = nonce = exc
        if isinstance(nonce, str) and int(nonce, 16) > tx.nonce:
            self.stats.included += 1
            _SKIPPED_INCLUDED.inc()
            return self._done(Verdict(tx.hash, Relevance.INCLUDED, latency_ms=self._since(pending)))
        try:
            if isinstance(answer, BaseException):
                raise answer
            sim = parse_simulation(answer, len(reads))
        except ChainError as exc:
            if tx.to is None and "missing keys" in str(exc) and self.relevance.simulate_creations:
                # anvil's eth_simulateV1 cannot run a deployment (it requires ``to``); say so once. Not
                # an error of this judgement: later deployments are not sent at all (irrelevant)
                log.warning("the node cannot simulate deployments; they are left to the block path")
                self.relevance.simulate_creations = False
                self.stats.skipped += 1
                _SKIPPED_UNSUPPORTED.inc()
                return self._done(
                    Verdict(tx.hash, relevance, latency_ms=self._since(pending), error=str(exc))
                )
            self.stats.errors += 1
            _SKIPPED_ERROR.inc()
            log.warning("pending transaction not simulated", tx=tx.hash, error=str(exc))
            return self._done(Verdict(tx.hash, relevance, latency_ms=self._since(pending), error=str(exc)))
        self.new_head(sim.number - 1)
        findings = self.judge.judge(pending, sim, time.time() * 1000)
        self.stats.simulated += 1
        verdict = Verdict(tx.hash, relevance, tuple(findings), self._since(pending))
        MEMPOOL_SIMULATED.inc()
        MEMPOOL_VERDICT_SECONDS.observe(verdict.latency_ms / 1000)
        if findings:
            self.stats.flagged += 1
            log.warning(
                "pending transaction breaks the protocol's detectors",
                tx=tx.hash,
                monitors=[f.monitor_id for f in findings],
                verdict_ms=round(verdict.latency_ms, 2),
            )
            if self.bus is not None:
                for finding in findings:
                    await self.bus.publish(Topics.FINDINGS, finding, dedup=finding.fingerprint)
                    FINDINGS.labels(
                        finding.monitor_id, finding.severity.name.lower(), finding.stage.value
                    ).inc()
        return self._done(verdict)

    def _since(self, pending: PendingTx) -> float:
        return self._clock() * 1000.0 - pending.seen_at_ms

    def _done(self, verdict: Verdict) -> Verdict:
        self.stats.latencies_ms.append(verdict.latency_ms)
        if self.on_verdict is not None:
            self.on_verdict(verdict)
        return verdict

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Track the head (cache lifetime) until ``stop`` is set or the task is cancelled: polled
        only when nobody told one for ``head_watchdog`` seconds."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            quiet = self._clock() - self._told_at
            if quiet >= self.head_watchdog:
                try:
                    self.head_polls += 1
                    self._advance(int(await self.rpc.call("eth_blockNumber"), 16))
                except ChainError as exc:
                    log.warning("head poll failed", error=str(exc))
            wait = self.head_poll_interval if quiet >= self.head_watchdog else self.head_watchdog - quiet
            try:
                async with asyncio.timeout(max(wait, self.head_poll_interval)):
                    await stop.wait()
            except TimeoutError:
                continue
