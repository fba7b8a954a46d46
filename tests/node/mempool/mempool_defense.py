"""Support for the mempool suite: the reference venue defended by breakglass built with ``build_app``
from the example configurations, and scenarios played with their strike in a public, fee-ordered mempool.

The configuration is examples/venue.yaml (monitors) with examples/playbooks.venue.yaml's responder,
policy and playbooks, their ``match.monitors`` pointed at venue.yaml's monitor ids (the playbooks
example carries its own two stand-in monitors), and ``mempool: {enabled: true}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from web3 import Web3

from breakglass.app import App, build_app
from breakglass.bus import Topics
from breakglass.bus.consumer import Consumer
from breakglass.config import load_config
from breakglass.devnet.anvil import Anvil, PublicBlocks
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.venue import Venue
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.drills.defense import EXAMPLES
from breakglass.drills.scenarios import Phase, ScenarioResult, ScenarioRun
from breakglass.simulate import MempoolService, Verdict
from breakglass.store.migrate import upgrade_async

MARKETS = (0, 1, 2)


def defended_config(folder: Path, node: Anvil, deployer: Deployer, *, mempool: bool = True) -> Path:
    deployer.manifest(node.url).write(folder / "manifest.json")
    config: dict[str, Any] = yaml.safe_load((EXAMPLES / "venue.yaml").read_text(encoding="utf-8"))
    playbooks: dict[str, Any] = yaml.safe_load(
        (EXAMPLES / "playbooks.venue.yaml").read_text(encoding="utf-8")
    )
    config.update(
        deployment="manifest.json",
        store={"url": f"sqlite:///{folder / 'bg.db'}"},
        responder=playbooks["responder"],
        policy=playbooks["policy"],
        playbooks=playbooks["playbooks"],
        mempool={"enabled": mempool, "ws": node.ws_url},
    )
    config["chain"]["poll_interval"] = 0.05
    (folder / "breakglass.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder / "breakglass.yaml"


@dataclass
class Defense:
    """breakglass running against one venue: follower, mempool simulator, responder; findings kept."""

    app: App
    findings: list[Finding] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @classmethod
    async def start(cls, config: Path, venue: Venue, monkeypatch: pytest.MonkeyPatch) -> Defense:
        monkeypatch.setenv("BREAKGLASS_GUARDIAN_KEY", _hex(venue.key("guardian").key))
        loaded = load_config(config)
        await upgrade_async(loaded.settings.store.url)
        defense = cls(build_app(loaded))
        app = defense.app
        await app.start()
        watcher = app.components.watcher
        watcher.follower.start_block = venue.w3.eth.block_number + 1
        mempool = app.components.mempool
        if isinstance(mempool, MempoolService):
            mempool.simulator.on_verdict = lambda v: defense.verdicts.__setitem__(v.tx_hash, v)
        # supervised like a stage's: on JetStream at load 9 a bare subscription once ended early and
        # silently, leaving the findings list empty while the responder, subscribed the same way, acted
        observer = Consumer(app.bus, Topics.FINDINGS, "test-observer", _keep(defense.findings))
        observer.subscribe()
        defense.tasks = [
            asyncio.create_task(observer.run(), name="test observer"),
            asyncio.create_task(watcher.run(defense.stop)),
            asyncio.create_task(app.components.respond.run(defense.stop)),
        ]
        if isinstance(mempool, MempoolService):
            defense.tasks.append(asyncio.create_task(mempool.run(defense.stop)))
            await asyncio.wait_for(mempool.mempool.subscribed.wait(), 10)
        return defense

    def serious(self, stage: FindingStage) -> list[Finding]:
        return [f for f in self.findings if f.stage is stage and f.severity >= Severity.HIGH]

    async def close(self, within: float = 30.0) -> None:
        """Stop every stage and close the app. A stage that fails, or outlives its stop by ``within`` s (it is
        then cancelled), fails the test, but only after the app is closed: its store connections and
        RPC sessions must not be left for the garbage collector to report in whichever test runs next."""
        self.stop.set()
        failures: list[BaseException] = []
        try:
            for task in self.tasks[1:]:
                failure = await _ended(task, within)
                if failure is not None:
                    failures.append(failure)
        finally:
            await self.app.close()  # closes the bus: the observer ends
            observed = await _ended(self.tasks[0], 10)
            if observed is not None:
                failures.append(observed)
        if failures:
            raise failures[0]


def _keep(findings: list[Finding]) -> Callable[[Any], Awaitable[None]]:
    async def keep(finding: Any) -> None:
        findings.append(finding)

    return keep


async def _ended(task: asyncio.Task[Any], within: float) -> BaseException | None:
    """Wait for a stage's ``run`` to end after its stop; what it raised, or why it is late."""
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
        return AssertionError(f"{task.get_coro()!r} did not end within {within:g} s of its stop")
    if task.cancelled():
        return None
    return task.exception()


def _hex(key: Any) -> str:
    return "0x" + bytes(key).hex()


def contained(venue: Venue) -> bool:
    guard = venue.guard.functions
    return bool(guard.isVenuePaused().call()) or any(guard.isMarketPaused(m).call() for m in MARKETS)


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a chain condition from a worker thread (the defender runs on the event loop meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def play_strike_in_public_mempool(run: ScenarioRun, node: Anvil) -> ScenarioResult:
    """Prepare and set up on automine (fast); then a public fee-ordered pool for the strike, each block
    mined a second after a transaction reached the pool (``PublicBlocks``: the defender has that second
    from each broadcast, whatever the load); once the venue is contained, back to automine."""
    venue = run.venue
    run.fund_dirty_wallet()
    public: PublicBlocks | None = None
    try:
        for phase, step in run.steps():
            if phase is Phase.STRIKE and public is None and not contained(venue):
                public = PublicBlocks(node, 1.0).start()
            run.execute(phase, step)
            if public is not None and contained(venue):
                public.stop()
                public = None
    finally:
        if public is not None:
            public.stop()
    return run.finish()


def guardian_txs(w3: Web3, guardian: str, first: int, last: int) -> list[tuple[int, int, str]]:
    """(block, index, hash) of every transaction the guardian sent in blocks ``first..last``."""
    out = []
    for number in range(first, last + 1):
        for tx_hash in w3.eth.get_block(number)["transactions"]:
            tx = w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            if str(tx["from"]).lower() == guardian.lower():
                out.append((number, int(tx["transactionIndex"]), tx["hash"].to_0x_hex()))
    return out
