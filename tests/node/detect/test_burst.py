"""Reads provably of their block, on a real anvil mining blocks back to back.

anvil runs a read of its head on the live state while it mines the next block; before the reads were
checked (``detect/proof.py``), 17 and 21 of 450 breaches of a 300-block burst were never reported.
Wrong answers are a race, so the burst catches unchecked reads in some runs only (with
``prove_reads=False`` and the head fetched in one batch, 1 run in 5 missed breaches, load ~7 on 2
cores); every decision on a wrong answer is covered on a fake node in
``tests/unit/detect/test_proven_reads.py``. Passed 8 runs of 8 at load 5-8 (4 extra busy loops
in 3 of them): it waits on conditions, and reads every block however far the follower falls behind.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from detect_support import Probe, write_config  # type: ignore[import-not-found]

from breakglass.chain.checkpoint import CheckpointStore
from breakglass.chain.follower import Follower
from breakglass.chain.rpc import RpcClient
from breakglass.detect import DetectionEngine, RpcBatchExecutor, build_detectors, contracts_of
from breakglass.detect.proof import READER_CODE
from breakglass.devnet.solc import compile_contracts
from breakglass.domain import Block, Finding
from breakglass.store.db import Base, make_engine, make_sessionmaker
from breakglass.testing import wait_until

BLOCKS = 300
LEVELS = (10, 150, 250, 400)
CAPS = (100, 200, 300)
MONITORS = "".join(
    f"  - {{id: cap-{cap}, kind: invariant, calls: {{lev: vault.maxLeverage()}}, expect: 'lev <= {cap}'}}\n"
    for cap in CAPS
)


def test_the_reader_code_in_the_package_is_the_compiled_source() -> None:
    assert compile_contracts(["contracts/reads"])["BlockReader"].deployed_bytecode == READER_CODE


async def test_a_burst_of_blocks_mined_back_to_back_misses_no_breach(probe: Probe, tmp_path: Path) -> None:
    """300 transactions, each setting the vault's max leverage to a random level, sent as fast as
    anvil mines them (nearly a block each); three invariants cap the level.
    Every block where an invariant breaks after holding must raise exactly one finding, for that
    block: the follower rides the head through its subscription, reading each block as it comes."""
    config = write_config(tmp_path, MONITORS)
    rpc = RpcClient.from_urls([probe.node.url])
    built = build_detectors(config, chain_id=31337)
    engine = DetectionEngine(
        built.detectors,
        chain_id=31337,
        contracts=contracts_of(config),
        executor=RpcBatchExecutor(rpc),
        # every block's state is read, however far a loaded machine lets the follower fall behind
        # (beyond the default 128 blocks it would skip reads by design, not by a wrong answer)
        state_horizon=10 * BLOCKS,
    )
    found: list[Finding] = []
    evaluate = engine.evaluate

    async def recording(block: Block) -> list[Finding]:
        findings = await evaluate(block)
        found.extend(findings)
        return findings

    engine.evaluate = recording  # type: ignore[method-assign]
    db = make_engine(f"sqlite:///{tmp_path / 'burst.db'}")
    async with db.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    first = probe.w3.eth.block_number + 1
    follower = Follower(
        rpc,
        CheckpointStore(make_sessionmaker(db)),
        engine,
        chain_id=31337,
        start_block=first,
        ws_url=probe.node.ws_url,
        poll_interval=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(follower.run(stop))
    rng = random.Random(17)
    levels = [rng.choice(LEVELS) for _ in range(BLOCKS)]
    setter = probe.vault.functions.setMaxLeverage
    mined: list[int] = []

    def burst() -> None:  # one transaction a block (automine), sent as fast as anvil takes them
        sent = [setter(level).transact({"from": probe.admin, "gas": 100_000}) for level in levels]
        mined.extend(probe.w3.eth.wait_for_transaction_receipt(h)["blockNumber"] for h in sent)

    try:
        await wait_until(lambda: follower.subscribed, within=60, what="the newHeads subscription")
        await asyncio.to_thread(burst)
        last = mined[-1]
        await wait_until(
            lambda: follower.last is not None and follower.last.number >= last,
            within=180,  # a condition, not a bound: the burst takes seconds on an idle machine
            what=f"the follower at block {last}",
        )
    finally:
        stop.set()
        await task
        await rpc.close()
        await db.dispose()
    # automine gives most transactions a block of their own; one sent while a block is being mined
    # joins the next one, so a block's level is that of its last transaction (sent in nonce order)
    level_at = dict(zip(mined, levels, strict=True))
    blocks = sorted(level_at)
    assert blocks == list(range(mined[0], mined[-1] + 1)) and len(blocks) > BLOCKS * 0.8
    expected: set[tuple[str, int]] = set()
    for cap in CAPS:
        held = True  # before the burst the level is the vault's initial 10
        for number in blocks:
            broken = level_at[number] > cap
            if broken and held:
                expected.add((f"cap-{cap}", number))
            held = not broken
    assert len(expected) > 150
    assert [f for f in found if "could not be evaluated" in f.title] == []
    assert sorted((f.monitor_id, f.block_number) for f in found) == sorted(expected)
    assert engine.unproven_reads == 0
    print(f"\nburst: {len(expected)} breaches in {len(blocks)} blocks, {engine.rereads} reads asked again")
