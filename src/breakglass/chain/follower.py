"""The chain follower: every block, in order, exactly once into the checkpoint, reorgs rolled back.

Guarantees (``docs/detection.md`` has the long form):
- blocks reach the handler in strictly increasing order, each after its parent; none is skipped;
- a block is checkpointed only after its handler returned and what it published is durable for its
  consumers (the handler's optional ``settled()``: on the in-process bus, every consumer handled the
  block's findings), so a crash re-delivers at most the blocks handled since the last checkpoint
  write that completed (a few blocks at the head: while following, ``run``, a step does not wait for
  its checkpoint write, the next new block is fetched and handled meanwhile and its row goes with the
  next write; in a backfill, which writes every ``checkpoint_interval`` seconds, the blocks of about
  two intervals); findings
  carry fingerprints for dedup; a restart resumes at last checkpointed + 1;
- a parent-hash mismatch walks back to the common ancestor, marks the orphaned blocks, tells the
  handler (which retracts their findings) and processes the new branch;
- only blocks ``confirmations`` deep are processed (0 = the head, fastest reaction);
- an unreachable node is retried with backoff forever; the follower resumes where it was;
- an unavailable store (locked, stopped) does not stop it: blocks go on being handled and their
  checkpoint rows wait in memory (``backlog``), written in order, with backoff, once the store takes
  writes again; a reorg within the unwritten rows is handled in memory. Only where it must read the
  store (where to resume at start-up, a reorg deeper than the backlog) does it wait for it. A crash
  meanwhile loses the unwritten rows: their blocks are handled again after the restart.

New heads arrive by WebSocket subscription when a ``ws_url`` is given, and are used as pushed: the
head's number and hash come with the notification, so a new head costs one round trip, a batch of
the block by hash, its receipts and the handler's state reads pinned to that hash
(``state_requests``). Without a live subscription the follower polls every ``poll_interval``
seconds (one more round trip: the head); while the subscription is live, polling is only its
watchdog, every ``watchdog_interval`` seconds without a pushed head.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from breakglass.chain.checkpoint import Checkpoint, CheckpointStore
from breakglass.chain.decode import RawBlock, RawReceipt, decode_block, decode_window, hex_int
from breakglass.chain.rpc import Call, RpcClient
from breakglass.domain import Block
from breakglass.errors import ChainError, RpcError
from breakglass.logs import get_logger
from breakglass.metrics import (
    FOLLOWER_BLOCKS,
    FOLLOWER_ERRORS,
    FOLLOWER_HEAD,
    FOLLOWER_LAG_BLOCKS,
    FOLLOWER_LAG_SECONDS,
    FOLLOWER_LAST_STEP,
    FOLLOWER_PROCESSED,
    FOLLOWER_REORGS,
)
from breakglass.store.health import StoreHealth, StoreUnavailable, is_unavailable

__all__ = ["BlockHandler", "Follower", "fetch_blocks", "window_calls"]

log = get_logger(__name__)
T = TypeVar("T")


class BlockHandler(Protocol):
    """What the follower feeds: the detection engine, a recorder in tests."""

    async def on_block(self, block: Block) -> int:
        """Process one block; return the number of findings it raised (recorded with the checkpoint)."""
        ...

    # Optional: ``async def prepare(self, blocks: Sequence[Block]) -> None`` runs right after a window
    # of blocks is fetched, inside the prefetch pipeline (the engine reads their state there);
    # ``def on_head(self, number: int) -> None`` is told the chain head before each step;
    # ``def settled(self) -> Awaitable[None]``: done once what it published so far is durable for its
    # consumers (the follower awaits it before writing the checkpoint of the blocks handled so far);
    # ``def snapshot(self) -> Mapping[str, Mapping[str, Any]]``: state to save with the checkpoint (what
    # changed since the last call), and ``def restore(self, states) -> None`` to read it back at start;
    # ``def state_requests(self, number, hash) -> list[Call]`` and ``def accept_state(self, hash,
    # answers)``: reads to send with a new head's block in one batch, and their answers;
    # ``async def fetch_window(self, rpc, numbers) -> list[Block] | None``: fetch a window itself (the
    # engine hands a backfill's windows to its worker process: ``detect/offload.py``), None: the
    # follower fetches it as usual. Either way the blocks come back in order and go to ``on_block``.

    async def on_reorg(self, orphaned: Sequence[Checkpoint]) -> None:
        """The given blocks (newest first) left the canonical chain: retract what they raised."""
        ...


def window_calls(numbers: Sequence[int], *, receipts_by_block: bool = True) -> list[Call]:
    """The batch that fetches ``numbers``: each block with full transactions, then its receipts."""
    calls: list[Call] = []
    for n in numbers:
        calls.append(("eth_getBlockByNumber", (hex(n), True)))
        if receipts_by_block:
            calls.append(("eth_getBlockReceipts", (hex(n),)))
    return calls


async def fetch_blocks(
    rpc: RpcClient, numbers: Sequence[int], *, receipts_by_block: bool = True
) -> list[Block]:
    """Blocks with full transactions and receipts, all in one batched round trip.

    Uses ``eth_getBlockReceipts``, the answer parsed straight into blocks; one that is not the usual
    answer (an error, a block the node does not have) is asked again through ``RpcClient.batch``,
    which retries and reports it. With ``receipts_by_block=False`` (nodes without it) a second
    round trip asks ``eth_getTransactionReceipt`` for every transaction.
    """
    calls = window_calls(numbers, receipts_by_block=receipts_by_block)
    if receipts_by_block:
        # the usual answer parsed straight into blocks (``decode_window``: a fifth of the CPU of
        # parsing it into dicts on near-empty blocks); anything else is asked again the ordinary way
        raw = await rpc.batch_raw(calls)
        blocks = decode_window(numbers, *raw) if raw is not None else None
        if blocks is not None:
            return blocks
    results = await rpc.batch(calls)
    step = 2 if receipts_by_block else 1
    raws: list[RawBlock] = results[::step]
    if receipts_by_block:
        receipts: list[list[RawReceipt] | None] = results[1::2]
    else:
        hashes = [[tx["hash"] for tx in raw.get("transactions", [])] if raw else [] for raw in raws]
        flat = await rpc.batch([("eth_getTransactionReceipt", (h,)) for hs in hashes for h in hs])
        receipts, i = [], 0
        for hs in hashes:
            receipts.append(flat[i : i + len(hs)])
            i += len(hs)
    return [decode_block(raw, rec) for raw, rec in zip(raws, receipts, strict=True)]


def _newest(rows: list[tuple[int, str, str, int]]) -> list[tuple[int, str, str, int]]:
    """``rows`` with each block once, where it was handled last (a block canonical again after a
    flip-flop reorg was handled twice), in the order they were handled last."""
    last = {h: i for i, (_n, h, _p, _f) in enumerate(rows)}
    return [row for i, row in enumerate(rows) if last[row[1]] == i]


class Follower:
    """Follows one chain into one handler. Construct freely; ``run()`` does the I/O."""

    def __init__(
        self,
        rpc: RpcClient,
        checkpoints: CheckpointStore,
        handler: BlockHandler,
        *,
        chain_id: int,
        confirmations: int = 0,
        poll_interval: float = 0.5,
        start_block: int | None = None,
        ws_url: str | None = None,
        batch_blocks: int = 20,
        prefetch: int = 4,
        progress: bool = False,
        max_reorg_depth: int = 256,
        checkpoint_interval: float = 0.25,
        health: StoreHealth | None = None,
        watchdog_interval: float = 5.0,
    ) -> None:
        self.rpc = rpc
        self.checkpoints = checkpoints
        self.handler = handler
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.start_block = start_block
        self.ws_url = ws_url
        self.batch_blocks = batch_blocks
        self.prefetch = prefetch
        self.progress = progress
        self.max_reorg_depth = max_reorg_depth
        self.checkpoint_interval = checkpoint_interval
        """seconds between checkpoint writes inside a backfill (a step always ends with one)"""
        self.watchdog_interval = max(watchdog_interval, poll_interval)
        """while the subscription is live: seconds without a pushed head before polling once"""
        self._pushed: tuple[int, str] | None = None
        """(number, hash) of the newest head pushed by the subscription and not yet processed"""
        self.head_listeners: list[Callable[[int], None]] = []
        """told every head number the follower learns (the mempool simulator's cache lifetime)"""
        self.polls = 0
        """heads asked for (``eth_getBlockByNumber(latest)``) rather than pushed"""
        self._flushed_at = 0.0
        self._last: Checkpoint | None = None
        self._loaded = False
        self._wake = asyncio.Event()
        self.receipts_by_block = True
        self.blocks_processed = 0
        self.reorgs = 0
        self.errors = 0
        self._writing: asyncio.Task[None] | None = None
        self.health = health or StoreHealth()
        self.backlog: list[tuple[int, str, str, int]] = []
        self._states: dict[str, Mapping[str, Any]] = {}
        """Detector states (the handler's ``snapshot()``) to write with the next checkpoint write."""
        """Handled blocks whose checkpoint rows the store has not taken yet (oldest first)."""
        self._orphaned: set[str] = set()
        """Hashes of backlog rows a reorg retracted before they were written."""
        self._again: set[str] = set()
        """Hashes of blocks handled again (canonical again after a flip-flop reorg, same hash) while
        their retracted rows were still in the backlog: written once, as handled last."""
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._inserting = False
        self.write_behind = False
        """``run`` sets it: a step's checkpoint write goes on while the next steps fetch and handle new
        blocks (their rows wait for the write after it). ``step()`` alone returns with its
        checkpoints written. A head block waited behind the write of the one before it: up to 0.8 s
        on a loaded machine (reentrant-aum drills, load 9), more than a private strike needs."""
        self.consumer_wait = 2.0
        """Seconds a step waits for the consumers to take its blocks' findings before it moves on
        (their checkpoint is written once they have, whenever that is)."""
        self.health.track("checkpoints", lambda: len(self.backlog))
        self.subscribed = False
        self.last_head_seen: float | None = None
        """``time.monotonic()`` of the last newHeads notification, for latency measurements."""
        self.head: int | None = None
        """The chain head at the last step (readiness: caught up when head - last <= confirmations)."""
        self._head_time = 0
        self._last_time = 0
        self.last_step_at: float | None = None
        """``time.monotonic()`` when the last step succeeded (readiness)."""
        self.last_attempt_at: float | None = None
        """``time.monotonic()`` when the last step was attempted, successful or not (liveness)."""
        self._metrics_chain: int | None = None
        self.fence: int | None = None
        """The lease's fencing token this follower writes checkpoints with (``CheckpointStore.claim``);
        None: unfenced (one follower per chain, no lease)."""

    @property
    def last(self) -> Checkpoint | None:
        return self._last

    async def _load(self) -> None:
        if not self._loaded:
            self._last = await self._read("checkpoint.load", self.checkpoints.last(self.chain_id))
            restore = getattr(self.handler, "restore", None)
            if restore is not None and self._last is not None:  # the detectors as of that checkpoint
                restore(await self._read("checkpoint.load", self.checkpoints.states(self.chain_id)))
            self._loaded = True

    async def _read(self, operation: str, query: Awaitable[T]) -> T:
        """A store read the follower cannot do without; ``StoreUnavailable`` (retried by ``run``)."""
        try:
            result = await query
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self.health.failed(operation, exc)
            raise StoreUnavailable(f"chain {self.chain_id}: {operation}: store unavailable") from exc
        return result

    async def _head(self) -> tuple[int, str]:
        raw = await self.rpc.call("eth_getBlockByNumber", "latest", False)
        if not isinstance(raw, dict):
            raise ChainError(f"eth_getBlockByNumber(latest) returned {raw!r}")
        self._head_time = hex_int(raw.get("timestamp", "0x0"), "eth_getBlockByNumber", "timestamp")
        return hex_int(raw.get("number"), "eth_getBlockByNumber", "number"), str(raw.get("hash", "")).lower()

    def _observe(self) -> None:
        """Head, last processed block and the lag between them, as gauges (once per window)."""
        if self._metrics_chain != self.chain_id:  # children cached: labels() costs more than set()
            label = str(self.chain_id)
            self._metrics_chain = self.chain_id
            self._m_head = FOLLOWER_HEAD.labels(label)
            self._m_processed = FOLLOWER_PROCESSED.labels(label)
            self._m_lag = FOLLOWER_LAG_BLOCKS.labels(label)
            self._m_lag_s = FOLLOWER_LAG_SECONDS.labels(label)
            self._m_step = FOLLOWER_LAST_STEP.labels(label)
        if self.head is not None:
            self._m_head.set(self.head)
        if self._last is not None:
            self._m_processed.set(self._last.number)
            if self.head is not None:
                self._m_lag.set(max(self.head - self._last.number, 0))
            if self._last_time:
                self._m_lag_s.set(max(self._head_time - self._last_time, 0))

    def _stepped(self) -> None:
        self.last_step_at = time.monotonic()
        self._observe()
        self._m_step.set(time.time())

    async def step(self) -> int:
        """Process every block available now (up to head - confirmations). Returns how many."""
        await self._load()
        pushed, self._pushed = self._pushed, None
        if pushed is not None:
            head, head_hash = pushed
        else:
            head, head_hash = await self._head()
            self.polls += 1
        self.head = head
        on_head = getattr(self.handler, "on_head", None)
        if on_head is not None:
            on_head(head)
        for listener in self.head_listeners:
            listener(head)
        target = head - self.confirmations
        if self._last is None:
            first = self.start_block if self.start_block is not None else max(target, 0)
        else:
            if self.confirmations == 0 and self._last.number == head and self._last.hash != head_hash:
                await self._reorg()  # same-height reorg: no child block will reveal it
            first = self._last.number + 1 if self._last else (self.start_block or 0)
        if target < first:
            if self.backlog:  # no new block, but checkpoints still wait for the store: try again
                await self._flush([])
            self._stepped()
            return 0
        done = await self._range(first, target, head_hash if target == head else None)
        self._stepped()
        return done

    async def _range(self, first: int, last: int, last_hash: str | None = None) -> int:
        total = last - first + 1
        bar = self._bar(total) if self.progress and total > self.batch_blocks else None
        done = 0
        windows = [
            list(range(s, min(s + self.batch_blocks, last + 1)))
            for s in range(first, last + 1, self.batch_blocks)
        ]
        tasks: dict[int, asyncio.Task[list[Block]]] = {}  # by window index: fetched, not yet handled
        rows: list[tuple[int, str, str, int]] = []
        self._flushed_at = time.monotonic()  # the interval counts from the start of the range
        try:
            if bar is not None:
                bar.start()
            for i in self._read_ahead(windows):
                tasks[i] = asyncio.create_task(self._fetch(windows[i]))
            for i, _ in enumerate(windows):
                # keep `prefetch` windows in flight so the node is never idle while we process
                for j in range(i, min(i + self.prefetch, len(windows))):
                    if j in tasks:
                        continue
                    window = windows[j]
                    if len(windows) == 1 and len(window) == 1 and last_hash:  # the new head alone
                        tasks[j] = asyncio.create_task(self._fetch_head(window[0], last_hash))
                    else:
                        tasks[j] = asyncio.create_task(self._fetch(window))
                # let new fetches send their requests before this window is handled: awaiting a
                # task that is already done does not yield, and the node would wait for us idle
                await asyncio.sleep(0)
                blocks = await tasks.pop(i)
                for block in blocks:
                    if self._last is not None and block.parent_hash != self._last.hash:
                        await self._flush(rows, wait=True)
                        await self._reorg()
                        return done  # the next step starts from the common ancestor
                    findings = await self.handler.on_block(block)
                    rows.append((block.number, block.hash, block.parent_hash, findings))
                    self._last = Checkpoint(block.number, block.hash)
                    self._last_time = block.timestamp
                    done += 1
                self._observe()
                if time.monotonic() - self._flushed_at >= self.checkpoint_interval:
                    await self._flush(rows)
                if bar is not None:
                    bar.update(bar.task_ids[0], advance=len(blocks))
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if bar is not None:
                bar.stop()
            # a step returns with its checkpoints written, unless following (``write_behind``)
            await self._flush(rows, wait=not self.write_behind)
        return done

    def _bar(self, total: int) -> Progress:
        bar = Progress(
            TextColumn("backfill chain {task.fields[chain]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        bar.add_task("backfill", total=total, chain=self.chain_id)
        return bar

    def _read_ahead(self, windows: list[list[int]]) -> list[int]:
        """The windows of a backfill to fetch at its start: those within the handler's
        ``state_horizon`` of the head, whose ``prepare`` reads state (historical ``eth_call``: what a
        node serves slowest, one at a time on anvil). Fetched and read in order as the other windows
        come, they would be waited for at the very end, with nothing left to overlap them; fetched
        first, their reads run while the older windows are handled. Not when the whole range fits
        the prefetch anyway."""
        horizon = getattr(self.handler, "state_horizon", None)
        if not isinstance(horizon, int) or self.head is None or len(windows) <= self.prefetch:
            return []
        return [i for i, w in enumerate(windows) if i >= self.prefetch and self.head - w[-1] <= horizon]

    async def _fetch(self, numbers: list[int]) -> list[Block]:
        fetch_window = getattr(self.handler, "fetch_window", None)
        if fetch_window is not None and self.receipts_by_block:
            taken: list[Block] | None = await fetch_window(self.rpc, numbers)
            if taken is not None:  # e.g. decoded and judged by the engine's worker process
                return taken
        try:
            blocks = await fetch_blocks(self.rpc, numbers, receipts_by_block=self.receipts_by_block)
        except RpcError as exc:
            if not (self.receipts_by_block and exc.method == "eth_getBlockReceipts" and exc.code == -32601):
                raise
            log.warning("node lacks eth_getBlockReceipts; fetching receipts one by one")
            self.receipts_by_block = False
            blocks = await fetch_blocks(self.rpc, numbers, receipts_by_block=False)
        prepare = getattr(self.handler, "prepare", None)
        if prepare is not None:
            await prepare(blocks)  # e.g. the engine's state reads, inside the prefetch pipeline
        return blocks

    async def _fetch_head(self, number: int, block_hash: str) -> list[Block]:
        """The new head by its hash, its receipts and the handler's state reads, in one batch."""
        state_requests = getattr(self.handler, "state_requests", None)
        if not self.receipts_by_block:
            return await self._fetch([number])
        state: list[Call] = state_requests(number, block_hash) if state_requests is not None else []
        calls: list[Call] = [
            ("eth_getBlockByHash", (block_hash, True)),
            ("eth_getBlockReceipts", (block_hash,)),
            *state,
        ]
        answers = await self.rpc.batch(calls, strict=False)
        raw, receipts = answers[0], answers[1]
        if isinstance(receipts, RpcError) and receipts.code == -32601:
            return await self._fetch([number])  # no eth_getBlockReceipts: _fetch learns and says so
        if isinstance(raw, BaseException) or isinstance(receipts, BaseException) or not raw:
            return await self._fetch([number])  # e.g. the head was replaced meanwhile: by number
        if state:
            self.handler.accept_state(block_hash, answers[2:])  # type: ignore[attr-defined]
        return [decode_block(raw, receipts)]

    async def _flush(self, rows: list[tuple[int, str, str, int]], *, wait: bool = False) -> None:
        """Move the handled blocks in ``rows`` to the backlog (emptying ``rows``) and write it.

        Write-behind: the write runs while the next blocks are handled; writes stay in order (one at a
        time, each the whole backlog) and ``wait=True`` (end of a step, before a reorg) waits for the
        write in flight. In a backfill the follower flushes every ``checkpoint_interval`` seconds
        rather than every window: a crash meanwhile only makes the checkpoint lag, so blocks are
        re-delivered, never skipped. While the store is unavailable nothing waits for it: the rows
        stay in the backlog and a write is tried again after a backoff (0.1 s doubling to 5 s)."""
        if rows:
            if self._orphaned:  # blocks retracted, now canonical again (the chain went back to their branch)
                again = self._orphaned.intersection(h for _n, h, _p, _f in rows)
                self._orphaned -= again
                self._again |= again
            self.backlog.extend(rows)
            self.blocks_processed += len(rows)
            FOLLOWER_BLOCKS.labels(str(self.chain_id)).inc(len(rows))
            rows.clear()
            self._flushed_at = time.monotonic()
            self._snapshot()
        if self.write_behind and not wait and self._writing is not None and not self._writing.done():
            return  # the write in flight goes on; these rows go with the next one
        await self._wait_write()  # the previous write first: they stay in order
        if self._writing is None and self.backlog and time.monotonic() >= self._retry_at:
            self._writing = asyncio.create_task(self._write_through() if self.write_behind else self._write())
            if wait:
                await self._wait_write()

    def _snapshot(self) -> None:
        """Take the handler's changed detector states (as of the last handled block) for the next write."""
        snapshot = getattr(self.handler, "snapshot", None)
        if snapshot is not None:
            self._states.update(snapshot())

    async def _wait_write(self) -> None:
        """Wait for the write in flight while the store is available; stop waiting as soon as it is
        not (this write, or another component, found it locked or down), or once the write has
        waited ``consumer_wait`` seconds for the consumers (they may be stuck on a store that just
        locked up and not know it yet): detection goes on, the write stays in flight."""
        writing = self._writing
        if writing is None:
            return
        deadline = time.monotonic() + self.consumer_wait
        while not writing.done() and self.health.available:
            if not self._inserting and time.monotonic() > deadline:
                break
            await asyncio.wait({writing}, timeout=0.1)
        if writing.done():
            if self._writing is writing:
                self._writing = None
            writing.result()  # a write that failed for another reason than an outage raises here

    async def settle(self) -> None:
        """Wait for the checkpoint write in flight and try the backlog once more (``run(until=)``,
        shutdown): returns with every handled block checkpointed unless the store is unavailable."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing
        if self.backlog:
            await self._write()

    async def _write_through(self) -> None:
        """``_write`` again while rows handled during the last one wait (``write_behind``: no step
        waits for the write in flight, so none may be there to start the next), until one fails."""
        await self._write()
        while self.write_behind and self.backlog and not self._retry_at:
            await self._write()

    async def _write(self) -> None:
        """One attempt at writing the backlog, once its blocks' findings are in every consumer's hands
        (the handler's optional ``settled()``, marked now); an unavailable store leaves the rows for
        the next attempt."""
        batch = self.backlog[: len(self.backlog)]
        rows = _newest(batch) if self._again else batch
        orphaned = frozenset(self._orphaned)  # as of this batch (a block handled again leaves it)
        settled = getattr(self.handler, "settled", None)
        mark = settled() if settled is not None else None  # taken now: this batch's findings
        if mark is not None:
            await mark  # during an outage the consumers wait for the store, and so does this write
        started = self.health.now()
        self._inserting = True
        try:
            # after a failed attempt, one may have committed before the connection dropped: skip rows
            # the store already has
            states, self._states = self._states, {}
            extra: dict[str, Any] = {"states": states} if states else {}
            await self.checkpoints.advance_many(
                self.chain_id,
                rows,
                orphaned=orphaned,
                replay=self._retry_delay > 0,
                fence=self.fence,
                **extra,
            )
        except Exception as exc:
            self._states = {**states, **self._states}  # newer ones win; written with the next attempt
            if not is_unavailable(exc):
                raise
            self.health.failed("checkpoint.write", exc)
            self._retry_delay = min(max(self._retry_delay * 2, 0.1), 5.0)
            self._retry_at = time.monotonic() + self._retry_delay
            return
        finally:
            self._inserting = False
        del self.backlog[: len(batch)]
        self._orphaned.difference_update(h for _n, h, _p, _f in batch)
        if self._again:
            self._again.difference_update(h for _n, h, _p, _f in batch)
        self._retry_delay = self._retry_at = 0.0
        self.health.succeeded("checkpoint.write", started=started)

    async def _hash_at(self, number: int) -> str | None:
        """The hash recorded for ``number``: from the backlog if it is there, else from the store."""
        for n, h, _p, _f in reversed(self.backlog):
            if n == number and h not in self._orphaned:
                return h
        if self.backlog and self.backlog[0][0] <= number:
            return None  # unwritten and orphaned: nothing canonical recorded
        return await self._read("checkpoint.read", self.checkpoints.hash_at(self.chain_id, number))

    async def _reorg(self) -> None:
        """Walk back to the newest stored block still canonical; orphan everything above it."""
        assert self._last is not None
        if self._writing is not None:  # the rows it is writing must not change under it
            writing, self._writing = self._writing, None
            if not self._inserting:  # still waiting for the consumers (an outage): nothing written yet
                writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writing
        number = self._last.number
        floor = max(number - self.max_reorg_depth, 0)
        while number >= floor:
            stored = await self._hash_at(number)
            raw = await self.rpc.call("eth_getBlockByNumber", hex(number), False)
            canonical = str(raw.get("hash", "")).lower() if isinstance(raw, dict) else None
            if stored is None or stored == canonical:
                break
            number -= 1
        else:
            raise ChainError(f"chain {self.chain_id}: reorg deeper than {self.max_reorg_depth} blocks")
        in_memory = bool(self.backlog) and self.backlog[0][0] <= number + 1
        if in_memory:  # every orphaned block is still in the backlog: no store needed
            orphaned = [
                Checkpoint(n, h)
                for n, h, _p, _f in _newest(self.backlog)[::-1]
                if n > number and h not in self._orphaned
            ]
        else:
            await self._write()  # the store's rows must be current before they are rewound
            if self.backlog:
                raise StoreUnavailable(f"chain {self.chain_id}: reorg below unwritten checkpoints")
            orphaned = await self._read("checkpoint.read", self.checkpoints.above(self.chain_id, number))
        self.reorgs += 1
        FOLLOWER_REORGS.labels(str(self.chain_id)).inc()
        log.warning("reorg", chain=self.chain_id, ancestor=number, orphaned=len(orphaned))
        # Retract first, mark the blocks orphaned once the retractions are in the consumers' hands: a
        # crash in between finds the old branch still checkpointed and walks the same reorg again.
        await self.handler.on_reorg(orphaned)
        self._snapshot()  # the detectors, rewound to the ancestor
        if in_memory:  # written as orphaned by the next write, whose settled mark covers the retractions
            self._orphaned.update(c.hash for c in orphaned)
        else:
            settled = getattr(self.handler, "settled", None)
            if settled is not None:
                await settled()
            states, self._states = self._states, {}
            try:
                await self._read(
                    "checkpoint.rewind",
                    self.checkpoints.rewind(self.chain_id, number, states=states or None, fence=self.fence),
                )
            except Exception:
                self._states = {**states, **self._states}
                raise
            self.health.succeeded("checkpoint.rewind")
        ancestor_hash = await self._hash_at(number)
        self._last = Checkpoint(number, ancestor_hash) if ancestor_hash else None
        if self._last is None and orphaned:
            self.start_block = orphaned[-1].number  # nothing older is stored: restart at the oldest orphan

    async def run(self, stop: asyncio.Event | None = None, *, until: int | None = None) -> None:
        """Follow until ``stop`` is set or block ``until`` has been processed."""
        stop = stop or asyncio.Event()
        listener = asyncio.create_task(self._listen(stop)) if self.ws_url else None
        delay = self.poll_interval
        self.write_behind = True
        try:
            while not stop.is_set():
                self._wake.clear()  # before the step: a head arriving during it wakes the next wait
                self.last_attempt_at = time.monotonic()
                try:
                    await self.step()
                    delay = self.poll_interval
                except ChainError as exc:
                    if not exc.recoverable and not isinstance(exc, RpcError):
                        raise
                    self.errors += 1
                    FOLLOWER_ERRORS.labels(str(self.chain_id)).inc()
                    log.warning("follower retrying", chain=self.chain_id, error=str(exc))
                    delay = min(delay * 2, 10.0)
                except StoreUnavailable as exc:  # already logged loudly by the store's health
                    self.errors += 1
                    FOLLOWER_ERRORS.labels(str(self.chain_id)).inc()
                    log.info("follower waiting for the store", chain=self.chain_id, error=str(exc))
                    delay = min(max(delay, 0.1) * 2, 5.0)
                if until is not None and self._last is not None and self._last.number >= until:
                    await self.settle()
                    return
                # live subscription: pushed heads wake the loop, polling is only a watchdog (unless
                # checkpoints wait for the store: the next step tries them again)
                retrying = bool(self.backlog) and self._writing is None  # (not a write in flight)
                idle = self.subscribed and delay == self.poll_interval and not retrying
                wait = self.watchdog_interval if idle else delay
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wait(stop)
        finally:
            self.write_behind = False
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            if self.backlog or self._writing is not None:
                with contextlib.suppress(Exception):  # a last try; what stays unwritten is handled again
                    async with asyncio.timeout(10):
                        await self.settle()
                if self.backlog:
                    log.error(
                        "checkpoints not written at stop; their blocks are handled again at the next start",
                        chain=self.chain_id,
                        blocks=len(self.backlog),
                    )

    async def _wait(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stopper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()

    def _push(self, head: Any) -> None:
        """Keep a pushed head's number and hash for the next step (a malformed one is polled for)."""
        try:
            number = hex_int(head.get("number"), "newHeads", "number")
            block_hash = str(head["hash"]).lower()
        except (AttributeError, KeyError, TypeError, ChainError):
            self._pushed = None
            return
        if self._pushed is None or number >= self._pushed[0]:
            self._pushed = (number, block_hash)

    async def _listen(self, stop: asyncio.Event) -> None:
        """``eth_subscribe("newHeads")`` (each head wakes the loop) and, at confirmation depth 0 for a
        handler that wants them (``log_addresses``), ``logs`` of those contracts, each handed to its
        ``on_pushed_log``; reconnects with backoff."""
        import websockets  # imported here: only followers with a ws_url need it

        assert self.ws_url is not None
        addresses = getattr(self.handler, "log_addresses", None)
        wanted: list[str] = addresses() if addresses is not None and self.confirmations == 0 else []
        delay = 0.2
        while not stop.is_set():
            try:
                async with websockets.connect(self.ws_url, max_size=2**24) as ws:
                    requests: list[list[Any]] = [["newHeads"]]
                    if wanted:
                        requests.append(["logs", {"address": wanted}])
                    for i, params in enumerate(requests, start=1):
                        request = {"jsonrpc": "2.0", "id": i, "method": "eth_subscribe", "params": params}
                        await ws.send(json.dumps(request))
                    delay = 0.2
                    kinds: dict[Any, int] = {}  # subscription id -> request id (1 heads, 2 logs)
                    async for message in ws:
                        body: Any = json.loads(message)
                        if body.get("id") in (1, 2) and "result" in body:
                            kinds[body["result"]] = body["id"]
                            self.subscribed = self.subscribed or body["id"] == 1
                        elif body.get("method") == "eth_subscription":
                            params = body.get("params", {})
                            if kinds.get(params.get("subscription")) == 2:
                                await self.handler.on_pushed_log(params.get("result"))  # type: ignore[attr-defined]
                                continue
                            self.last_head_seen = time.monotonic()
                            self._push(params.get("result"))
                            self._wake.set()
            except (OSError, websockets.WebSocketException) as exc:
                self.subscribed = False
                self._pushed = None
                log.info("newHeads subscription lost; polling meanwhile", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
