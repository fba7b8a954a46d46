"""The detection engine: one block in, findings out on the bus; a reorg in, retractions out.

Per block: (1) every detector's view calls plus the code of contracts created in the block, in one
JSON-RPC batch at that block's number; (2) each log of a configured contract decoded once; (3) every
detector run on the same ``BlockContext``; (4) findings published on ``Topics.FINDINGS``. A detector
that raises is logged and counted, never allowed to stop the others or the follower.

State reads (invariants, flow balances, new contracts' code) are made only for blocks within
``state_horizon`` blocks of the head: a full (non-archive) node keeps the state of the last 128 blocks
only, and an invariant broken long ago can no longer be prevented. Deeper in a backfill, events, calls,
transactions, governance, set-up and intel still run on every block; flows judge amounts only.

The engine is the follower's ``BlockHandler``. It remembers which findings each recent block raised,
so that when the follower reports orphaned blocks it can publish a ``Retraction`` of exactly those
findings on ``Topics.RETRACTIONS`` (the alerting stage marks them retracted; nothing is deleted), and
it rewinds every stateful detector to the common ancestor (``detect/rewind.py``).

Dispatch: a detector that declares an ``Interest`` (``base.py``) is called only on blocks that have
what it looks at (a matching decoded log, any transaction, or state the engine read: invariants); the
others run on every block. A quiet block behind the head takes its parent's reads (``_carries``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any

from eth_utils.crypto import keccak

from breakglass.bus import Bus, Topics
from breakglass.chain.checkpoint import Checkpoint
from breakglass.chain.follower import window_calls
from breakglass.chain.rpc import RpcClient
from breakglass.detect.abi import AbiIndex
from breakglass.detect.base import BlockContext, DecodedLog, Detector, Interest
from breakglass.detect.offload import BackfillWorker, LocalInterest
from breakglass.detect.proof import ProvenReads
from breakglass.detect.pushed import PushedLogs
from breakglass.detect.reads import (
    CallExecutor,
    MulticallExecutor,
    ReadCall,
    ReadFailed,
    RpcBatchExecutor,
    decode_results,
)
from breakglass.domain import Block, Finding, Hash32, PendingTx
from breakglass.errors import BreakglassError, RpcError
from breakglass.logs import get_logger
from breakglass.messages.findings import Retraction
from breakglass.metrics import DETECTOR_ERRORS, FINDINGS
from breakglass.metrics.collect import MonitorClock

__all__ = ["DetectionEngine"]

log = get_logger(__name__)

_REASK_AFTER = (0.0, 0.005, 0.025, 0.1)
"""seconds before each attempt at a block's state read (an answer from the wrong state means the node
is mid-block: anvil mines the next one; a node behind a load balancer catches up)"""


class _AllOf:
    """Awaits each of ``parts`` in turn; makes no coroutine until awaited (see ``bus.memory._Mark``)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: tuple[Awaitable[None], ...]) -> None:
        self._parts = parts

    def __await__(self) -> Generator[Any, None, None]:
        return self._wait().__await__()

    async def _wait(self) -> None:
        for part in self._parts:
            await part


class DetectionEngine:
    """Runs ``detectors`` on each block. Construct with no I/O; the executor does the reads."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        *,
        chain_id: int,
        contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]],
        executor: CallExecutor,
        bus: Bus | None = None,
        want_code: bool = False,
        keep_blocks: int = 1024,
        state_horizon: int = 128,
        multicall: str | None = None,
        prove_reads: bool = True,
        backfill_worker: bool = False,
    ) -> None:
        """``multicall``: a Multicall3 (``aggregate3``) address; with it, the reads of a block behind
        the head go in one ``eth_call`` instead of one per view call (a node serves historical calls
        slowly: on anvil ~3 ms each, against ~6 ms for all of a block's calls in one), when the node
        cannot run the block reader. ``prove_reads``: read through the block reader (``proof.py``)
        and check every answer is of its block's state; off, or on a node that refuses state
        overrides, reads are made by block number (or Multicall3) without that check.
        ``backfill_worker``: windows of a backfill beyond the state horizon are decoded and judged by
        the stateless detectors in a second process (``offload.py``); ``close()`` stops it."""
        self.detectors = list(detectors)
        self.chain_id = chain_id
        self.abi = AbiIndex(contracts)
        self.addresses = {name: address.lower() for name, (address, _abi) in contracts.items()}
        self.executor = executor
        self.bus = bus
        self.want_code = want_code
        unique: dict[str, ReadCall] = {}
        for detector in self.detectors:
            for call in detector.reads():
                unique.setdefault(call.key, call)
        self.calls = list(unique.values())
        # dispatch: which detectors a block wakes (``base.Interest``); the rest are not called
        self._always: list[int] = []
        self._on_state: list[int] = []
        self._on_transactions: list[int] = []
        self._on_log: dict[tuple[str, str], list[int]] = {}
        for i, detector in enumerate(self.detectors):
            interest: Interest | None = getattr(detector, "interest", None)
            if interest is None:
                self._always.append(i)
                continue
            if interest.state:
                self._on_state.append(i)
            if interest.transactions:
                self._on_transactions.append(i)
            for key in interest.logs:
                self._on_log.setdefault(key, []).append(i)
        self._quiet = list(self._always)
        interests: list[Interest | None] = [getattr(d, "interest", None) for d in self.detectors]
        self._log_keys: frozenset[tuple[str, str]] | None = (
            None if any(i is None or i.other_logs for i in interests) else frozenset(self._on_log)
        )
        """the (address, topic0) of the only logs worth decoding; None: every configured contract's"""
        self.balance_accounts = sorted(
            {a.lower() for d in self.detectors for a in (getattr(d, "balances", None) or (lambda: ()))()}
        )
        """Accounts balance monitors watch: ``eth_getBalance`` in the same batch as each block's reads."""
        self._balance_reads: dict[str, dict[str, int]] = {}
        self._last_balances: dict[str, int] = {}
        self.clock = MonitorClock(d.monitor_id for d in self.detectors)
        """Seconds spent in each monitor (``breakglass_monitor_evaluation_seconds``)."""
        self._quiet_state = sorted({*self._always, *self._on_state})
        self._raised: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self._saved: dict[str, str] = {}
        """each stateful detector's state as last handed to the follower (JSON), to write only changes"""
        self._prepared: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self._keep = keep_blocks
        self.errors = 0
        self.blocks = 0
        self.last_latency_ms = 0.0
        self.state_horizon = state_horizon
        self.multicall = multicall
        self.head: int | None = None
        """The chain head as last told by the follower (``on_head``); None: every block is recent."""
        self.skipped_reads = 0
        self.carried_reads = 0
        self.retried_reads = 0
        """calls read again by block hash after failing by number (``_retry_new_failures``)"""
        self._failing_reads: set[str] = set()
        self.state_reads = 0
        """blocks whose state was read at their own height"""
        self.state_read_ms = 0.0
        """wall time spent waiting for those reads (the node executing historical calls, mostly)"""
        """quiet blocks that took their parent's reads (``_carries``)"""
        self._last_reads: tuple[str, dict[str, Any]] | None = None
        """(hash, reads) of the last block evaluated with its state read"""
        self._proof = (
            ProvenReads(self.calls)
            if prove_reads and self.calls and isinstance(executor, RpcBatchExecutor)
            else None
        )
        """every block's view calls in one eth_call whose answer shows which block it ran on (``proof.py``)"""
        self.pushed = PushedLogs(self.detectors, self.abi, self.addresses)
        self._pushed_found: OrderedDict[str, set[str]] = OrderedDict()
        """fingerprints published from pushed logs, by block hash (the block path skips them)"""
        self._early: dict[str, Any] = {}
        """raw reader answers that came with a head's fetch (``state_requests``), by block hash"""
        self._reader_failures = 0
        self.rereads = 0
        """state reads asked again because the node ran them on another block's state"""
        self.unproven_reads = 0
        """blocks whose reads could not be shown to be of that block (given up loudly, or no proof)"""
        self._remote: frozenset[int] = frozenset()
        """indices of the detectors the worker runs on the blocks it judged"""
        self._judged: OrderedDict[str, tuple[Block, dict[int, list[Finding]], bool]] = OrderedDict()
        """blocks the worker judged, by hash, until the follower hands them over: (the block as the
        worker returned it, its findings there by detector index, whether it came whole)"""
        self.worker: BackfillWorker | None = None
        if backfill_worker:
            stateless = [(i, d) for i, d in enumerate(self.detectors) if getattr(d, "stateless", False)]
            self._remote = frozenset(i for i, _d in stateless)
            local = [i for i in range(len(self.detectors)) if i not in self._remote]
            wants = LocalInterest(
                always=any(i in self._always for i in local),
                transactions=any(i in self._on_transactions for i in local),
                logs=frozenset(k for k, ids in self._on_log.items() if any(i in local for i in ids)),
                code=want_code,
            )
            self.worker = BackfillWorker(stateless, contracts, chain_id, wants)
        self._finding_counters: dict[tuple[str, Any, Any], Any] = {}
        self.block_listeners: list[Callable[[Block], None]] = []
        """Told each block near the head once its findings are published; they must not block
        (attack-contract simulation queues it: ``simulate.attack``)."""
        self.early_listeners: list[Callable[[Block], None]] = []
        """Told each block near the head once, as it arrives, before its state is read and it is
        evaluated (a window's blocks in ``prepare``, a head alone in ``on_block``); they must not block
        (attack-contract simulation checks the contracts it touched that the protocol's own actors
        are about to call: ``AttackSimulator.on_fetched``)."""
        self._told: OrderedDict[str, None] = OrderedDict()
        """hashes of the blocks the early listeners were told of (the last few hundred)"""

    def on_head(self, number: int) -> None:
        self.head = number

    async def fetch_window(self, rpc: RpcClient, numbers: Sequence[int]) -> list[Block] | None:
        """A window beyond the state horizon, fetched here and decoded and judged by the worker
        process (``offload.py``); None (the follower fetches it as usual) for any other window, while
        the worker starts, or when it could not judge this one."""
        worker = self.worker
        if worker is None or self.head is None or self.head - numbers[-1] <= self.state_horizon:
            return None
        if not worker.ready:
            worker.chain_id = self.chain_id
            worker.start_soon()
            return None
        raw = await rpc.batch_raw(window_calls(numbers))
        if raw is None:
            return None
        judged = await worker.judge(numbers, *raw)
        if judged is None:
            return None
        entries, errors = judged
        self.errors += errors
        blocks: list[Block] = []
        for item, found in entries:
            whole = isinstance(item, Block)
            if isinstance(item, Block):
                block = item
            else:
                number, block_hash, parent, timestamp, base_fee, withdrawals = item
                block = Block(
                    number, Hash32(block_hash), Hash32(parent), timestamp, base_fee, (), withdrawals
                )
            self._judged[block.hash] = (block, found, whole)
            blocks.append(block)
        while len(self._judged) > 4 * self._keep:  # a reorg or a cancelled step can leave some behind
            self._judged.popitem(last=False)
        return blocks

    async def close(self) -> None:
        """Stop the backfill worker, if one runs."""
        if self.worker is not None:
            await self.worker.close()

    def _recent(self, block: Block) -> bool:
        return self.head is None or self.head - block.number <= self.state_horizon

    def _created(self, block: Block) -> list[str]:
        if not self.want_code:
            return []
        return [
            tx.receipt.contract_address.lower()
            for tx in block.transactions
            if tx.receipt and tx.receipt.contract_address
        ]

    def _carries(self, block: Block) -> bool:
        """A quiet block behind the head (no transaction, no withdrawal) has its parent's contract
        state: it takes its parent's reads instead of asking the node again (historical ``eth_call``
        is what a node serves slowest). The head itself is always read: views that read the block's
        timestamp may change on an empty block, and the head is where a reaction still helps."""
        return (
            block.quiet
            and self.head is not None
            and block.number < self.head
            and self.head - (block.number - 1) <= self.state_horizon
        )

    async def prepare(self, blocks: Sequence[Block]) -> None:
        """Read the state of a whole window of blocks in one batch (the follower calls this right
        after fetching them, inside its prefetch pipeline, so backfills never wait on reads).
        Blocks that will take their parent's reads (``_carries``) are not read."""
        self._tell_early(blocks)  # before the window's reads: a fetched block waits for no round trip
        blocks = [b for b in blocks if self._recent(b) and not self._carries(b)]
        if (not self.calls and not self.want_code and not self.balance_accounts) or not blocks:
            return
        if self._proof is not None:
            await self._prepare_proven(blocks)
            return
        if not isinstance(self.executor, RpcBatchExecutor):
            results = await asyncio.gather(*(self._read(b) for b in blocks))
            self._prepared.update({b.hash: r for b, r in zip(blocks, results, strict=True)})
            return
        requests: list[tuple[str, tuple[Any, ...]]] = []
        shapes: list[tuple[Block, list[str], bool]] = []
        for block in blocks:
            created = self._created(block)
            packed = self.multicall is not None and bool(self.calls) and self.head is not None
            packed = packed and block.number < (self.head or 0)
            if packed:
                requests.append(MulticallExecutor.request(self.calls, self.multicall or "", block.number))
            else:
                requests += RpcBatchExecutor.requests(self.calls, block.number)
            requests += [("eth_getCode", (address, hex(block.number))) for address in created]
            requests += self._balance_requests(block)
            shapes.append((block, created, packed))
        started = time.perf_counter()
        answers = await self.executor.rpc.batch(requests, strict=False)
        self.state_read_ms += (time.perf_counter() - started) * 1000
        self.state_reads += len(shapes)
        decoded: list[list[Any]] = []
        i = 0
        for block, created, packed in shapes:
            if packed:
                parsed = MulticallExecutor.parse(answers[i], len(self.calls))
                if parsed is None and isinstance(answers[i], str):  # no Multicall3 there ("0x")
                    log.warning(
                        "chain.multicall does not answer as Multicall3; reading past blocks call by call",
                        multicall=self.multicall,
                    )
                    self.multicall = None
                    await self.prepare(blocks)
                    return
                raw = parsed if parsed is not None else MulticallExecutor.unpack(answers[i], len(self.calls))
                i += 1
            else:
                raw = answers[i : i + len(self.calls)]
                i += len(self.calls)
            decoded.append([*raw, *answers[i : i + len(created)]])
            i += len(created)
            self._keep_balances(block, answers[i : i + len(self.balance_accounts)])
            i += len(self.balance_accounts)
        for (block, created, _packed), mine in zip(shapes, decoded, strict=True):
            self._prepared[block.hash] = self._decode_answers(mine, created)
        while len(self._prepared) > 4 * self._keep:  # a reorg can leave entries nobody pops
            self._prepared.pop(next(iter(self._prepared)))
        while len(self._balance_reads) > 4 * self._keep:
            self._balance_reads.pop(next(iter(self._balance_reads)))

    async def _fetch_balances(self, block: Block) -> dict[str, int]:
        """The watched balances at ``block`` in one batch; nothing (never an error) if it fails."""
        rpc = getattr(self.executor, "rpc", None)
        if rpc is None:
            return {}
        try:
            answers = await rpc.batch(self._balance_requests(block), strict=False)
        except BreakglassError as exc:
            log.warning("balances unread", block=block.number, error=str(exc))
            return {}
        return {
            a: int(v, 16) for a, v in zip(self.balance_accounts, answers, strict=False) if isinstance(v, str)
        }

    def _balance_requests(self, block: Block) -> list[tuple[str, tuple[Any, ...]]]:
        return [("eth_getBalance", (a, hex(block.number))) for a in self.balance_accounts]

    def _keep_balances(self, block: Block, answers: Sequence[Any]) -> None:
        self._balance_reads[block.hash] = {
            a: int(v, 16) for a, v in zip(self.balance_accounts, answers, strict=False) if isinstance(v, str)
        }

    def state_requests(self, number: int, block_hash: str) -> list[tuple[str, tuple[Any, ...]]]:
        """The state read of a block known so far by number and hash only (a new head), for the
        follower to send in the same batch as the block and its receipts: one round trip for all.
        ``accept_state`` takes the answers; the block's handling checks them."""
        if self._proof is None or (self.head is not None and self.head - number > self.state_horizon):
            return []
        return [self._proof.request(block_hash)]

    def accept_state(self, block_hash: str, answers: Sequence[Any]) -> None:
        if answers:
            self._early[block_hash] = answers[0]
            while len(self._early) > 4 * self._keep:  # heads whose block never came (a reorg)
                self._early.pop(next(iter(self._early)))

    async def _prepare_proven(self, blocks: Sequence[Block]) -> None:
        """A window's reads, each block's through the reader, all in one batch; a block whose answer
        is not of its own state is left out (``_read`` asks for it again on its own)."""
        assert self._proof is not None
        requests = [self._proof.request(b.hash) for b in blocks]
        started = time.perf_counter()
        answers = await self._rpc().batch(requests, strict=False)
        self.state_read_ms += (time.perf_counter() - started) * 1000
        for block, answer in zip(blocks, answers, strict=True):
            self._early[block.hash] = answer

    def _decode_answers(
        self, answers: Sequence[Any], created: list[str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        raw = [RpcBatchExecutor.raw(a) for a in answers[: len(self.calls)]]
        codes = answers[len(self.calls) :]
        hashes = {
            address: "0x" + keccak(hexstr=code).hex()
            for address, code in zip(created, codes, strict=False)
            if isinstance(code, str) and code.startswith("0x")
        }
        return decode_results(self.calls, raw), hashes

    async def _read(self, block: Block) -> tuple[dict[str, Any], dict[str, str]]:
        prepared = self._prepared.pop(block.hash, None)
        if prepared is not None:
            return prepared
        last = self._last_reads
        if last is not None and last[0] == block.parent_hash and self._carries(block):
            self.carried_reads += 1
            return last[1], {}
        if not self._recent(block):
            self.skipped_reads += 1
            return {}, {}
        created = self._created(block)
        if not self.calls and not created and not self.balance_accounts:
            return {}, {}
        if self._proof is not None and self.calls:
            reads = await self._read_proven(block)
            if reads is not None:
                return reads, await self._codes(block, created)
        if isinstance(self.executor, RpcBatchExecutor):
            # one round trip for all: the view calls, the new contracts' code, the watched balances
            requests: list[tuple[str, tuple[Any, ...]]] = [
                *RpcBatchExecutor.requests(self.calls, block.number)
            ]
            requests += [("eth_getCode", (address, hex(block.number))) for address in created]
            requests += self._balance_requests(block)
            started = time.perf_counter()
            answers = await self.executor.rpc.batch(requests, strict=False)
            self.state_read_ms += (time.perf_counter() - started) * 1000
            self.state_reads += 1
            mine = len(self.calls) + len(created)
            self._keep_balances(block, answers[mine:])
            return self._decode_answers(answers[:mine], created)
        raw = await self.executor.execute(self.calls, block.number)
        codes: list[Any] = []
        rpc = getattr(self.executor, "rpc", None)
        if created and rpc is not None:
            codes = await rpc.batch([("eth_getCode", (a, hex(block.number))) for a in created], strict=False)
        hashes = {
            address: "0x" + keccak(hexstr=code).hex()
            for address, code in zip(created, codes, strict=False)
            if isinstance(code, str) and code.startswith("0x")
        }
        return decode_results(self.calls, raw), hashes

    def _rpc(self) -> RpcClient:
        rpc: RpcClient = self.executor.rpc  # type: ignore[attr-defined]  # an RpcBatchExecutor's
        return rpc

    async def _codes(self, block: Block, created: list[str]) -> dict[str, str]:
        """Code hashes of the contracts ``block`` created (intel, set-up): a second round trip, made
        only for blocks with deployments (which contracts were created is known from the receipts)."""
        if not created:
            return {}
        rpc = self._rpc()
        pin = {"blockHash": block.hash}
        codes = await rpc.batch([("eth_getCode", (a, pin)) for a in created], strict=False)
        return {
            address: "0x" + keccak(hexstr=code).hex()
            for address, code in zip(created, codes, strict=False)
            if isinstance(code, str) and code.startswith("0x")
        }

    async def _read_proven(self, block: Block) -> dict[str, Any] | None:
        """The block's view calls, shown to be of its own state (``proof.py``), asked up to four times;
        then given up loudly (every call a ``ReadFailed``). None when the node cannot run the reader
        (the caller reads without proof; after three such blocks in a row, for good)."""
        assert self._proof is not None
        rpc = self._rpc()
        answer = self._early.pop(block.hash, None)
        self.state_reads += 1
        reason = "no answer"
        for attempt, pause in enumerate(_REASK_AFTER):
            if answer is None:
                await asyncio.sleep(pause)  # the node is mid-block: let it finish
                started = time.perf_counter()
                [answer] = await rpc.batch([self._proof.request(block.hash)], strict=False)
                self.state_read_ms += (time.perf_counter() - started) * 1000
            try:
                proof, raw = self._proof.parse(answer)
            except RpcError as exc:
                if exc.recoverable:
                    raise
                self._reader_failed(block, exc)
                return None
            self._reader_failures = 0
            mismatch = self._proof.check(proof, block)
            if mismatch is None:
                return decode_results(self.calls, raw)
            reason, answer = mismatch, None
            if attempt + 1 < len(_REASK_AFTER):
                self.rereads += 1
                log.info("state read not of its block; asking again", block=block.number, reason=reason)
        self.unproven_reads += 1
        log.error(
            "state reads are not of the block they claim; its invariants are not evaluated",
            block=block.number,
            hash=block.hash,
            reason=reason,
        )
        failed = f"the node answered another block's state {len(_REASK_AFTER)} times ({reason})"
        return {call.key: ReadFailed(call.key, failed) for call in self.calls}

    def _reader_failed(self, block: Block, exc: RpcError) -> None:
        """Count a block the reader could not run on; three in a row turn it off (with a warning)."""
        self._reader_failures += 1
        self.unproven_reads += 1
        if self._reader_failures >= 3:
            log.warning(
                "the node cannot run breakglass's block reader (eth_call with state overrides); "
                "state reads are no longer checked against their block",
                error=str(exc),
            )
            self._proof = None
        else:
            log.info("block reader failed; reading without proof", block=block.number, error=str(exc))

    async def _retry_new_failures(self, block: Block, reads: dict[str, Any]) -> dict[str, Any]:
        """Ask once more, by block hash, for a call that failed here but not at the previous block.

        A read by number made while the node mines the next block can run on a state that is not the
        block's (anvil, seen: a view computing ``block.timestamp - updatedAt`` underflowed on the new
        state under the old timestamp). A call that keeps failing is not retried again."""
        failed = {k for k, v in reads.items() if isinstance(v, ReadFailed)}
        fresh = failed - self._failing_reads
        self._failing_reads = failed
        retry = [c for c in self.calls if c.key in fresh]
        if not retry or not isinstance(self.executor, RpcBatchExecutor):
            return reads
        requests = RpcBatchExecutor.requests(retry, {"blockHash": block.hash})
        answers = await self.executor.rpc.batch(requests, strict=False)
        again = decode_results(retry, [RpcBatchExecutor.raw(a) for a in answers])
        self.retried_reads += len(retry)
        healed = {k: v for k, v in again.items() if not isinstance(v, ReadFailed)}
        self._failing_reads -= set(healed)
        return {**reads, **healed} if healed else reads

    def _decode_logs(self, block: Block) -> list[DecodedLog]:
        out: list[DecodedLog] = []
        wanted = self._log_keys
        for tx in block.transactions:
            if tx.receipt is None or tx.receipt.status == 0:
                continue
            for entry in tx.receipt.logs:
                if wanted is not None and (
                    not entry.topics or (entry.address.lower(), entry.topics[0]) not in wanted
                ):
                    continue  # no detector can look at it (``Interest.other_logs``)
                decoded = self.abi.decode_log(entry)
                if decoded is not None:
                    name = self.abi.names[entry.address.lower()]
                    out.append(DecodedLog(entry, name, decoded[0], decoded[1], tx))
        return out

    async def evaluate(
        self, block: Block, remote: Mapping[int, list[Finding]] | None = None
    ) -> list[Finding]:
        """Every detector on ``block``; nothing is published (``breakglass test-monitor`` uses this).
        ``remote``: the findings of the stateless detectors by index, judged by the worker process
        (``offload.py``); those detectors are not run here."""
        seen_ms = time.time() * 1000
        carried = self._carries(block)
        fetch: asyncio.Future[dict[str, int]] | None = None
        if self.balance_accounts and self._proof is not None and self._recent(block) and not carried:
            # proven reads are one eth_call: the balances go in a batch of their own, sent alongside
            fetch = asyncio.ensure_future(self._fetch_balances(block))
        reads, hashes = await self._read(block)
        state_read = self._recent(block)
        # read with the block's state (a quiet block keeps its parent's: no transaction moved ether)
        balances = self._balance_reads.pop(block.hash, self._last_balances if carried else {})
        if fetch is not None:
            balances = await fetch or balances
        self._last_balances = balances
        if state_read and reads and self._proof is None:
            # proven reads are of the block's own state: a call that failed there really fails
            reads = await self._retry_new_failures(block, reads)
        self._last_reads = (block.hash, reads) if state_read else None
        ctx = BlockContext(
            chain_id=self.chain_id,
            block=block,
            reads=reads,
            state_read=state_read,
            logs=self._decode_logs(block),
            contracts=self.addresses,
            code_hashes=hashes,
            observed_at_ms=seen_ms,
            balances=balances,
        )
        woken = self._woken(block, ctx.logs, state_read)
        if remote is None:
            return [f for _i, found in self._judge(ctx, woken) for f in found]
        # the worker ran the stateless detectors: merge in configuration order, as if all ran here
        local = [i for i in woken if i not in self._remote]
        by_index = dict(self._judge(ctx, local))
        by_index.update(remote)
        return [f for i in sorted(by_index) for f in by_index[i]]

    def judge_unread(self, block: Block) -> list[tuple[int, list[Finding]]]:
        """(detector index, findings) of every detector ``block`` wakes, its state unread (a block
        beyond the state horizon): what the backfill worker process computes (``offload.py``)."""
        ctx = BlockContext(
            chain_id=self.chain_id,
            block=block,
            reads={},
            state_read=False,
            logs=self._decode_logs(block),
            contracts=self.addresses,
            observed_at_ms=time.time() * 1000,
        )
        return [(i, found) for i, found in self._judge(ctx, self._woken(block, ctx.logs, False)) if found]

    def _judge(self, ctx: BlockContext, woken: Sequence[int]) -> list[tuple[int, list[Finding]]]:
        """Run the detectors of indices ``woken`` on ``ctx``: (index, findings) each, in that order."""
        out: list[tuple[int, list[Finding]]] = []
        seconds, counts = self.clock.seconds, self.clock.counts
        clock = time.perf_counter
        for i in woken:
            detector = self.detectors[i]
            started = clock()
            try:
                out.append((i, detector.on_block(ctx)))
            except (BreakglassError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
                self.errors += 1
                DETECTOR_ERRORS.labels(detector.monitor_id).inc()
                log.error(
                    "detector failed", monitor=detector.monitor_id, block=ctx.block.number, error=str(exc)
                )
            monitor = detector.monitor_id
            seconds[monitor] += clock() - started
            counts[monitor] += 1
        return out

    def _woken(self, block: Block, logs: Sequence[DecodedLog], state_read: bool) -> list[int]:
        """Indices of the detectors this block can interest, in configuration order."""
        if not block.transactions:
            return self._quiet_state if state_read else self._quiet
        chosen = set(self._always)
        chosen.update(self._on_transactions)
        if state_read:
            chosen.update(self._on_state)
        for item in logs:
            chosen.update(self._on_log.get((item.log.address.lower(), item.event.topic0), ()))
        return sorted(chosen)

    def log_addresses(self) -> list[str]:
        """Contracts whose logs the follower's subscription should push (``on_pushed_log``)."""
        return self.pushed.addresses()

    async def on_pushed_log(self, raw: Mapping[str, Any]) -> None:
        """A log the node pushed: the event monitors that need nothing else judge it now (``pushed.py``)."""
        try:
            entry, findings = self.pushed.judge(raw, self.chain_id, time.time() * 1000)
        except (BreakglassError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
            self.errors += 1
            log.error("pushed log not judged", error=str(exc))
            return
        published = self._pushed_found.setdefault(entry.block_hash, set())
        if entry.removed:  # the node took the log back (a reorg): retract what it raised
            gone = tuple(f.fingerprint for f in findings if f.fingerprint in published)
            published.difference_update(gone)
            if gone and self.bus is not None:
                retraction = Retraction(
                    self.chain_id, entry.block_number, entry.block_hash, gone, at_ms=time.time() * 1000
                )
                await self.bus.publish(Topics.RETRACTIONS, retraction)
            return
        for finding in findings:
            if finding.fingerprint in published:
                continue
            published.add(finding.fingerprint)
            if self.bus is not None:
                await self.bus.publish(Topics.FINDINGS, finding)
        if findings:
            _number, raised = self._raised.setdefault(entry.block_hash, (entry.block_number, []))
            raised += [f.fingerprint for f in findings if f.fingerprint not in raised]
        while len(self._pushed_found) > self._keep:
            self._pushed_found.popitem(last=False)

    def _tell_early(self, blocks: Sequence[Block]) -> None:
        if not self.early_listeners:
            return
        for block in blocks:
            if block.hash in self._told or not self._recent(block):
                continue
            self._told[block.hash] = None
            while len(self._told) > 512:
                self._told.popitem(last=False)
            for listener in self.early_listeners:
                listener(block)

    async def on_block(self, block: Block) -> int:
        self._tell_early((block,))
        remote: dict[int, list[Finding]] | None = None
        if self._judged:
            judged = self._judged.pop(block.hash, None)
            if judged is not None and judged[0] is block:  # this very block came from the worker
                remote = judged[1]
                if not judged[2] and not remote:  # no detector here wants it, none there found anything
                    if self.calls:
                        self.skipped_reads += 1
                        self._last_reads = None
                    self.blocks += 1
                    return 0
        nothing_to_read = not self.calls and not self.balance_accounts
        if block.quiet and not remote and not self._quiet and (nothing_to_read or not self._recent(block)):
            # nothing runs on a quiet block whose state is not read (none configured, or a backfill
            # deeper than the horizon): nothing to build
            if self.calls:
                self.skipped_reads += 1
                self._last_reads = None
            self.blocks += 1
            return 0
        started = time.perf_counter()
        findings = await (self.evaluate(block) if remote is None else self.evaluate(block, remote))
        early = self._pushed_found.get(block.hash, set())
        if self.bus is not None:
            for finding in findings:
                if finding.fingerprint not in early:  # not already published from the pushed log
                    await self.bus.publish(Topics.FINDINGS, finding)
                    self._counted(finding).inc()
        self.blocks += 1
        self.last_latency_ms = (time.perf_counter() - started) * 1000
        if self.block_listeners and self._recent(block):
            for listener in self.block_listeners:
                listener(block)
        if findings or block.hash in self._raised:
            raised = self._raised.get(block.hash, (block.number, []))[1]
            fingerprints = [*raised, *(f.fingerprint for f in findings if f.fingerprint not in raised)]
            self._raised[block.hash] = (block.number, fingerprints)
            while len(self._raised) > self._keep:
                self._raised.popitem(last=False)
        return len(findings)

    def _counted(self, finding: Finding) -> Any:
        """The findings counter's child for this finding's labels, looked up once per label set
        (``labels()`` per finding showed in a backfill's profile: 1,425 findings per 2,000 blocks)."""
        key = (finding.monitor_id, finding.severity, finding.stage)
        child = self._finding_counters.get(key)
        if child is None:
            child = self._finding_counters[key] = FINDINGS.labels(
                finding.monitor_id, finding.severity.name.lower(), finding.stage.value
            )
        return child

    def snapshot(self) -> dict[str, Any]:
        """The state of every detector that keeps one (``snapshot()``) and changed since the last
        call, by monitor id: the follower writes it with the checkpoint."""
        out: dict[str, Any] = {}
        for detector in self.detectors:
            take = getattr(detector, "snapshot", None)
            if take is None:
                continue
            state = take()
            text = json.dumps(state, sort_keys=True, default=str)
            if self._saved.get(detector.monitor_id) != text:
                self._saved[detector.monitor_id] = text
                out[detector.monitor_id] = json.loads(text)
        return out

    def restore(self, states: Mapping[str, Any]) -> None:
        """Hand each detector its saved state (a restart): breaches in progress, windows, taint."""
        for detector in self.detectors:
            state = states.get(detector.monitor_id)
            give = getattr(detector, "restore", None)
            if give is not None and isinstance(state, Mapping):
                give(state)
                self._saved[detector.monitor_id] = json.dumps(state, sort_keys=True, default=str)
        if states:
            log.info("detector state restored", detectors=sorted(states))

    def settled(self) -> Awaitable[None]:
        """Done once the findings and retractions published so far are durable for their consumers
        (``Bus.settled``): the follower waits for it before it checkpoints the blocks that raised them."""
        settled = getattr(self.bus, "settled", None)
        if settled is None:
            return _AllOf(())
        return _AllOf((settled(Topics.FINDINGS), settled(Topics.RETRACTIONS)))

    async def on_reorg(self, orphaned: Sequence[Checkpoint]) -> None:
        """One ``Retraction`` per orphaned block. Fingerprints are listed when this process raised
        them; after a restart the block hash alone identifies them (every finding carries it)."""
        for checkpoint in orphaned:
            raised = self._raised.pop(checkpoint.hash, None)
            # retracted with the block: should the chain come back to it (a flip-flop), the block
            # path raises them again rather than skip them as already published from the push
            self._pushed_found.pop(checkpoint.hash, None)
            fingerprints = tuple(raised[1]) if raised else ()
            retraction = Retraction(
                self.chain_id, checkpoint.number, checkpoint.hash, fingerprints, at_ms=time.time() * 1000
            )
            log.warning(
                "retracting findings of orphaned block", block=checkpoint.number, findings=len(fingerprints)
            )
            if self.bus is not None:
                await self.bus.publish(Topics.RETRACTIONS, retraction)
        if orphaned:
            # stateful detectors (flows, set-up, invariants' prev, plugins) forget the orphaned blocks
            ancestor = min(c.number for c in orphaned) - 1
            for detector in self.detectors:
                rewind = getattr(detector, "rewind", None)
                if rewind is not None:
                    rewind(ancestor)
            self._last_reads = None

    async def on_pending(self, pending: PendingTx) -> list[Finding]:
        """Pending-transaction handlers of plugins (the simulator adds invariants on the post-state)."""
        out: list[Finding] = []
        for detector in self.detectors:
            handler = getattr(detector, "on_pending", None)
            if handler is not None:
                out += handler(pending)
        return out
