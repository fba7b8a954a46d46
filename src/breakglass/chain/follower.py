"""The chain follower: every block, in order, exactly once into the checkpoint, reorgs rolled back.

Guarantees (``docs/detection.md`` has the long form):
- blocks reach the handler in strictly increasing order, each after its parent; none is skipped;
- a block is checkpointed only after its handler returned and what it published is durable for its
  consumers (the handler's optional ``settled()``: on the in-process bus, every consumer handled the
  block's findings), so a crash re-delivers at most the blocks handled since the last checkpoint
  write that completed (a block or two at the head; in a backfill,
  which writes every ``checkpoint_interval`` seconds, the blocks of about two intervals); findings
  carry fingerprints for dedup; a restart resumes at last checkpointed + 1;
- a parent-hash mismatch walks back to the common ancestor, marks the orphaned blocks, tells the
  handler (which retracts their findings) and processes the new branch;
- only blocks ``confirmations`` deep are processed (0 = the head, fastest reaction);
- an unreachable node is retried with backoff forever; the follower resumes where it was.

New heads arrive by WebSocket subscription when a ``ws_url`` is given; polling every
``poll_interval`` seconds always runs underneath, so a dead subscription only costs latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from breakglass.chain.checkpoint import Checkpoint, CheckpointStore
from breakglass.chain.decode import RawBlock, RawReceipt, decode_block, hex_int
from breakglass.chain.rpc import Call, RpcClient
from breakglass.domain import Block
from breakglass.errors import ChainError, RpcError
from breakglass.logs import get_logger

__all__ = ["BlockHandler", "Follower", "fetch_blocks"]

log = get_logger(__name__)


class BlockHandler(Protocol):
    """What the follower feeds: the detection engine, a recorder in tests."""

    async def on_block(self, block: Block) -> int:
        """Process one block; return the number of findings it raised (recorded with the checkpoint)."""
        ...

    # Optional: ``async def prepare(self, blocks: Sequence[Block]) -> None`` runs right after a window
    # of blocks is fetched, inside the prefetch pipeline (the engine reads their state there);
    # ``def on_head(self, number: int) -> None`` is told the chain head before each step;
    # ``def settled(self) -> Awaitable[None]``: done once what it published so far is durable for its
    # consumers (the follower awaits it before writing the checkpoint of the blocks handled so far).

    async def on_reorg(self, orphaned: Sequence[Checkpoint]) -> None:
        """The given blocks (newest first) left the canonical chain: retract what they raised."""
        ...


async def fetch_blocks(
    rpc: RpcClient, numbers: Sequence[int], *, receipts_by_block: bool = True
) -> list[Block]:
    """Blocks with full transactions and receipts, all in one batched round trip.

    Uses ``eth_getBlockReceipts``; with ``receipts_by_block=False`` (nodes without it) a second
    round trip asks ``eth_getTransactionReceipt`` for every transaction.
    """
    calls: list[Call] = []
    for n in numbers:
        calls.append(("eth_getBlockByNumber", (hex(n), True)))
        if receipts_by_block:
            calls.append(("eth_getBlockReceipts", (hex(n),)))
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
        self._flushed_at = 0.0
        self._last: Checkpoint | None = None
        self._loaded = False
        self._wake = asyncio.Event()
        self.receipts_by_block = True
        self.blocks_processed = 0
        self.reorgs = 0
        self.errors = 0
        self._writing: asyncio.Task[None] | None = None
        self.subscribed = False
        self.last_head_seen: float | None = None
        """``time.monotonic()`` of the last newHeads notification, for latency measurements."""

    @property
    def last(self) -> Checkpoint | None:
        return self._last

    async def _load(self) -> None:
        if not self._loaded:
            self._last = await self.checkpoints.last(self.chain_id)
            self._loaded = True

    async def _head(self) -> tuple[int, str]:
        raw = await self.rpc.call("eth_getBlockByNumber", "latest", False)
        if not isinstance(raw, dict):
            raise ChainError(f"eth_getBlockByNumber(latest) returned {raw!r}")
        return hex_int(raw.get("number"), "eth_getBlockByNumber", "number"), str(raw.get("hash", "")).lower()

    async def step(self) -> int:
        """Process every block available now (up to head - confirmations). Returns how many."""
        await self._load()
        head, head_hash = await self._head()
        on_head = getattr(self.handler, "on_head", None)
        if on_head is not None:
            on_head(head)
        target = head - self.confirmations
        if self._last is None:
            first = self.start_block if self.start_block is not None else max(target, 0)
        else:
            if self.confirmations == 0 and self._last.number == head and self._last.hash != head_hash:
                await self._reorg()  # same-height reorg: no child block will reveal it
            first = self._last.number + 1 if self._last else (self.start_block or 0)
        if target < first:
            return 0
        return await self._range(first, target)

    async def _range(self, first: int, last: int) -> int:
        total = last - first + 1
        bar = self._bar(total) if self.progress and total > self.batch_blocks else None
        done = 0
        windows = [
            list(range(s, min(s + self.batch_blocks, last + 1)))
            for s in range(first, last + 1, self.batch_blocks)
        ]
        pending: list[asyncio.Task[list[Block]]] = []
        rows: list[tuple[int, str, str, int]] = []
        self._flushed_at = time.monotonic()  # the interval counts from the start of the range
        try:
            if bar is not None:
                bar.start()
            for i, _ in enumerate(windows):
                # keep `prefetch` windows in flight so the node is never idle while we process
                while len(pending) < self.prefetch and i + len(pending) < len(windows):
                    pending.append(asyncio.create_task(self._fetch(windows[i + len(pending)])))
                # let new fetches send their requests before this window is handled: awaiting a
                # task that is already done does not yield, and the node would wait for us idle
                await asyncio.sleep(0)
                blocks = await pending.pop(0)
                for block in blocks:
                    if self._last is not None and block.parent_hash != self._last.hash:
                        await self._flush(rows, wait=True)
                        await self._reorg()
                        return done  # the next step starts from the common ancestor
                    findings = await self.handler.on_block(block)
                    rows.append((block.number, block.hash, block.parent_hash, findings))
                    self._last = Checkpoint(block.number, block.hash)
                    done += 1
                if time.monotonic() - self._flushed_at >= self.checkpoint_interval:
                    await self._flush(rows)
                if bar is not None:
                    bar.update(bar.task_ids[0], advance=len(blocks))
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if bar is not None:
                bar.stop()
            await self._flush(rows, wait=True)  # a step returns with its checkpoints written
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

    async def _fetch(self, numbers: list[int]) -> list[Block]:
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

    async def _flush(self, rows: list[tuple[int, str, str, int]], *, wait: bool = False) -> None:
        """Checkpoint the handled blocks in ``rows`` in one transaction, and empty it.

        Write-behind: the write runs while the next blocks are handled; writes stay in order (each
        waits for the previous) and ``wait=True`` (end of a step, before a reorg) drains them. In a
        backfill the follower flushes every ``checkpoint_interval`` seconds rather than every window:
        a crash meanwhile only makes the checkpoint lag, so blocks are re-delivered, never skipped."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await writing
        if rows:
            batch = list(rows)
            rows.clear()
            self.blocks_processed += len(batch)
            self._flushed_at = time.monotonic()
            settled = getattr(self.handler, "settled", None)
            mark = settled() if settled is not None else None  # taken now: this batch's findings
            self._writing = asyncio.create_task(self._write(batch, mark))
        if wait and self._writing is not None:
            writing, self._writing = self._writing, None
            await writing

    async def _write(self, batch: list[tuple[int, str, str, int]], settled: Awaitable[None] | None) -> None:
        if settled is not None:
            await settled  # the blocks' findings are in every consumer's hands before they count as done
        await self.checkpoints.advance_many(self.chain_id, batch)

    async def _reorg(self) -> None:
        """Walk back to the newest stored block still canonical; orphan everything above it."""
        assert self._last is not None
        number = self._last.number
        floor = max(number - self.max_reorg_depth, 0)
        while number >= floor:
            stored = await self.checkpoints.hash_at(self.chain_id, number)
            raw = await self.rpc.call("eth_getBlockByNumber", hex(number), False)
            canonical = str(raw.get("hash", "")).lower() if isinstance(raw, dict) else None
            if stored is None or stored == canonical:
                break
            number -= 1
        else:
            raise ChainError(f"chain {self.chain_id}: reorg deeper than {self.max_reorg_depth} blocks")
        # Retract first, mark the blocks orphaned once the retractions are in the consumers' hands: a
        # crash in between finds the old branch still checkpointed and walks the same reorg again.
        orphaned = await self.checkpoints.above(self.chain_id, number)
        self.reorgs += 1
        log.warning("reorg", chain=self.chain_id, ancestor=number, orphaned=len(orphaned))
        await self.handler.on_reorg(orphaned)
        settled = getattr(self.handler, "settled", None)
        if settled is not None:
            await settled()
        await self.checkpoints.rewind(self.chain_id, number)
        ancestor_hash = await self.checkpoints.hash_at(self.chain_id, number)
        self._last = Checkpoint(number, ancestor_hash) if ancestor_hash else None
        if self._last is None and orphaned:
            self.start_block = orphaned[-1].number  # nothing older is stored: restart at the oldest orphan

    async def run(self, stop: asyncio.Event | None = None, *, until: int | None = None) -> None:
        """Follow until ``stop`` is set or block ``until`` has been processed."""
        stop = stop or asyncio.Event()
        listener = asyncio.create_task(self._listen(stop)) if self.ws_url else None
        delay = self.poll_interval
        try:
            while not stop.is_set():
                self._wake.clear()  # before the step: a head arriving during it wakes the next wait
                try:
                    await self.step()
                    delay = self.poll_interval
                except ChainError as exc:
                    if not exc.recoverable and not isinstance(exc, RpcError):
                        raise
                    self.errors += 1
                    log.warning("follower retrying", chain=self.chain_id, error=str(exc))
                    delay = min(delay * 2, 10.0)
                if until is not None and self._last is not None and self._last.number >= until:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wait(stop), timeout=delay)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _wait(self, stop: asyncio.Event) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({stopper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            waker.cancel()

    async def _listen(self, stop: asyncio.Event) -> None:
        """``eth_subscribe("newHeads")``: each head wakes the loop; reconnects with backoff."""
        import websockets  # imported here: only followers with a ws_url need it

        assert self.ws_url is not None
        delay = 0.2
        while not stop.is_set():
            try:
                async with websockets.connect(self.ws_url, max_size=2**24) as ws:
                    await ws.send(
                        json.dumps(
                            {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}
                        )
                    )
                    delay = 0.2
                    async for message in ws:
                        body: Any = json.loads(message)
                        if body.get("id") == 1 and "result" in body:
                            self.subscribed = True
                        elif body.get("method") == "eth_subscription":
                            self.last_head_seen = time.monotonic()
                            self._wake.set()
            except (OSError, websockets.WebSocketException) as exc:
                self.subscribed = False
                log.info("newHeads subscription lost; polling meanwhile", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
