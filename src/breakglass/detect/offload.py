"""The backfill worker: a second process decodes a backfill's blocks and runs the stateless detectors.

A backfill of near-empty blocks is CPU-bound in this one process: the node serves a block in tens of
microseconds, and parsing its JSON, building the typed block and running the event, call and
transaction filters cost about as much again. Beyond the state horizon (``DetectionEngine``: no
state is read there) the engine hands each window to this worker instead
(``DetectionEngine.fetch_window``, called by the follower): this process sends the batch and passes
the undecoded answer (``RpcClient.batch_raw``) to the worker, which parses and decodes it
(``chain.decode.decode_window``) and runs the stateless detectors (those with ``stateless = True``:
event, call and transaction filters), while this process sends the next windows' requests.

What comes back, per block in order: the block itself when a detector that stays here (stateful:
flows, set-up, governance, plugins; intel) can be woken by it, else its header; and the worker's
findings by detector index. The engine merges them with its own detectors' findings in configuration
order and publishes them when the follower hands it the block, in block order, as in one process;
the follower checkpoints a block only after that, as always. So a worker that dies (killed, out of
memory) loses nothing: its windows' findings were never published, and the engine handles those
windows here while a new worker starts. Anything unusual in an answer (an error, a missing block)
makes the worker decline the window, and the follower fetches it the ordinary way, which retries or
reports precisely.

The worker is started with ``spawn`` (no fork of a process holding event loops, sockets and threads)
at the first window beyond the horizon, or ahead with ``start()``; until it is up, windows are handled
in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from breakglass.chain.decode import decode_window
from breakglass.detect.base import Detector
from breakglass.detect.reads import ReadCall
from breakglass.domain import Block, Finding
from breakglass.logs import get_logger

__all__ = ["BackfillWorker", "Judged", "LocalInterest"]

log = get_logger(__name__)

Header = tuple[int, str, str, int, "int | None", int]
"""(number, hash, parent hash, timestamp, base fee, withdrawals) of a block no local detector needs."""

Judged = tuple[Block | Header, dict[int, list[Finding]]]
"""One block of a window as the worker returns it: the block (or its header), the findings of the
worker's detectors by configuration index."""


@dataclass(frozen=True, slots=True)
class LocalInterest:
    """What the detectors that stay in this process can be woken by (``base.Interest``): a block with
    any of it comes back whole, any other only as its header."""

    always: bool
    transactions: bool
    logs: frozenset[tuple[str, str]]
    code: bool
    """contracts created in a block are read (intel, set-up): such a block comes back whole"""

    def wants(self, block: Block) -> bool:
        if not block.transactions:
            return self.always
        if self.always or self.transactions:
            return True
        for tx in block.transactions:
            receipt = tx.receipt
            if receipt is None:
                continue
            if self.code and receipt.contract_address:
                return True
            for entry in receipt.logs:
                if entry.topics and (entry.address.lower(), entry.topics[0]) in self.logs:
                    return True
        return False


class _Unread:
    """The worker's engine reads no state (beyond the horizon there is none to read)."""

    async def execute(self, calls: Sequence[ReadCall], block: int | str | Mapping[str, str]) -> list[Any]:
        raise AssertionError("the backfill worker reads no state")


class _Judge:
    """The worker process's side: an engine of the stateless detectors, built once at start."""

    def __init__(
        self,
        detectors: Sequence[tuple[int, Detector]],
        contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]],
        chain_id: int,
        local: LocalInterest,
    ) -> None:
        from breakglass.detect.engine import DetectionEngine  # the engine imports this module

        self.indices = [i for i, _d in detectors]
        self.engine = DetectionEngine(
            [d for _i, d in detectors], chain_id=chain_id, contracts=contracts, executor=_Unread()
        )
        self.local = local

    def __call__(self, numbers: Sequence[int], first_id: int, body: bytes) -> tuple[list[Judged], int] | None:
        blocks = decode_window(numbers, first_id, body)
        if blocks is None:
            return None
        errors = self.engine.errors
        out: list[Judged] = []
        for block in blocks:
            found = (
                {self.indices[i]: f for i, f in self.engine.judge_unread(block)} if block.transactions else {}
            )
            if block.quiet or self.local.wants(block):
                out.append((block, found))
            else:
                header = (
                    block.number,
                    block.hash,
                    block.parent_hash,
                    block.timestamp,
                    block.base_fee,
                    block.withdrawals,
                )
                out.append((header, found))
        return out, self.engine.errors - errors


_judge: _Judge | None = None


def _start(payload: bytes) -> None:
    global _judge
    # the parent handles Ctrl-C and stops the worker; the worker must not die of the terminal's SIGINT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # nor outlive a parent killed with SIGKILL: the pool's pipe never tells it (it holds both ends)
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    _judge = pickle.loads(payload)  # noqa: S301  (our own parent's detectors, over our own pipe)


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()  # returns when the parent process is gone
        os._exit(0)


def _ping() -> int:
    return os.getpid()


def _run(numbers: Sequence[int], first_id: int, body: bytes) -> tuple[list[Judged], int] | None:
    assert _judge is not None, "worker not initialised"
    return _judge(numbers, first_id, body)


class BackfillWorker:
    """One worker process for one engine. No I/O until ``start()`` (or the first window)."""

    def __init__(
        self,
        detectors: Sequence[tuple[int, Detector]],
        contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]],
        chain_id: int,
        local: LocalInterest,
    ) -> None:
        self._args = (list(detectors), dict(contracts), chain_id, local)
        pickle.dumps(self._args)  # a detector that cannot travel to the worker fails here, not later
        self._pool: ProcessPoolExecutor | None = None
        self._starting: asyncio.Task[None] | None = None
        self.pid: int | None = None
        """the worker process's id, once it answered"""
        self.ready = False
        self.windows = 0
        """windows the worker judged"""
        self.declined = 0
        """windows it gave back (an unusual answer: fetched again the ordinary way)"""
        self.restarts = 0
        """workers that died and were replaced"""
        self.closed = False

    @property
    def chain_id(self) -> int:
        return self._args[2]

    @chain_id.setter
    def chain_id(self, value: int) -> None:
        self._args = (self._args[0], self._args[1], value, self._args[3])

    async def start(self) -> None:
        """Start the worker process and wait until it has built its detectors (~1 s: a new Python)."""
        if self.ready or self.closed:
            return
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._spawn())
        await asyncio.shield(self._starting)

    def start_soon(self) -> None:
        """Start the worker in the background; windows are handled here until it is up."""
        if not self.ready and not self.closed and (self._starting is None or self._starting.done()):
            self._starting = asyncio.ensure_future(self._spawn())
            self._starting.add_done_callback(_log_failure)

    async def _spawn(self) -> None:
        detectors, contracts, chain_id, local = self._args
        payload = pickle.dumps(_JudgeRecipe(detectors, contracts, chain_id, local))
        pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(payload,),
        )
        loop = asyncio.get_running_loop()
        try:
            pid = await loop.run_in_executor(pool, _ping)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        if self.closed:
            pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool, self.pid, self.ready = pool, pid, True
        log.info("backfill worker started", pid=pid, chain=chain_id)

    async def judge(
        self, numbers: Sequence[int], first_id: int, body: bytes
    ) -> tuple[list[Judged], int] | None:
        """The window's blocks and findings from the worker, and how many detector errors it logged;
        None: not judged there (no worker up, it died meanwhile, or it declined the answer)."""
        pool = self._pool
        if pool is None or not self.ready:
            self.start_soon()
            return None
        loop = asyncio.get_running_loop()
        try:
            judged = await loop.run_in_executor(pool, _run, list(numbers), first_id, body)
        except BrokenProcessPool:
            self._died(pool)
            return None
        if judged is None:
            self.declined += 1
            return None
        self.windows += 1
        return judged

    def _died(self, pool: ProcessPoolExecutor) -> None:
        """The worker died (every window it held fails with it): the engine handles them here while a
        new worker starts."""
        if self._pool is not pool:
            return  # another window already saw it
        self.ready, self._pool = False, None
        self.restarts += 1
        log.error(
            "backfill worker died; its windows are handled in this process while a new one starts",
            pid=self.pid,
            restarts=self.restarts,
        )
        pool.shutdown(wait=False, cancel_futures=True)
        self.start_soon()

    async def cpu_seconds(self) -> float:
        """CPU time the worker process has used so far (for measurements); 0 when none is up."""
        pool = self._pool
        if pool is None:
            return 0.0
        return await asyncio.get_running_loop().run_in_executor(pool, time.process_time)

    async def close(self) -> None:
        """Stop the worker process (it holds nothing to save)."""
        self.closed = True
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            with contextlib.suppress(BaseException):
                await starting
        pool, self._pool, self.ready = self._pool, None, False
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _JudgeRecipe:
    """What the worker builds its ``_Judge`` from (pickled across the process boundary)."""

    detectors: Sequence[tuple[int, Detector]]
    contracts: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]
    chain_id: int
    local: LocalInterest

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Judge, (list(self.detectors), dict(self.contracts), self.chain_id, self.local))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("backfill worker failed to start; backfilling in this process", error=str(task.exception()))
