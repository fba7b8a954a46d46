"""Defended drills: a scenario played on a fresh devnet twice from one snapshot, undefended (the baseline
loss) and with breakglass defending with the example configuration, benign traffic around the attack.

Modes: ``private`` keeps automine (each transaction mined at once, no mempool window: the defense must
act between the attacker's transactions; each attacker wait of the scenario is paced in real time at
``time_scale`` of it, at most ``max_pause`` seconds); ``public`` mines a block a second during the strike
so pending transactions sit in anvil's fee-ordered mempool, each strike transaction sent right after a
block as a public broadcast would be. Prepare and set-up play on automine in both modes.
Times are measured from the broadcast of the first exploit transaction: ms by the wall clock, blocks from
the head at that moment (a pause in the block that includes the strike counts 1). Negative times mean
before it: the set-up stage was detected (and the attacker's accounts blocked) before the strike.
The same two times are also measured from the attack contract's deployment (the scenario's first
contract-creating set-up step: ms from its broadcast, blocks from the block that mined it), which is
where a defense without a mempool window has to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions, BlockMode
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import USD, Venue, VenueOptions, deploy_venue
from breakglass.drills.benign import BenignConfig, BenignTraffic
from breakglass.drills.defense import Defense, Observed, defended_config, write_keystore
from breakglass.drills.faults import Fault, make_fault
from breakglass.drills.scenarios import Phase, Scenario, ScenarioRun
from breakglass.drills.scenarios.base import Step
from breakglass.errors import DevnetError

__all__ = [
    "DRILL_NODE_ARGS",
    "DrillOptions",
    "DrillResult",
    "Mode",
    "benign_blocks",
    "contained",
    "parse_mode",
    "run_drill",
    "run_drills",
]

MARKETS = (0, 1, 2)
DRILL_NODE_ARGS = ("--prune-history", "512")
"""Recent states in memory only: without it anvil writes evicted states under ~/.foundry/anvil/tmp and
leaves them there when stopped (gigabytes per long run). The follower reads at most a few blocks back."""
Series = list[tuple[int, float]]


class Mode(enum.StrEnum):
    PUBLIC = "public"
    """The strike is broadcast to a public, fee-ordered mempool (a block a second)."""
    PRIVATE = "private"
    """Automine: every transaction mined at once, as with private order flow."""


def parse_mode(value: str) -> Mode:
    """``public``/``private``, or the older ``interval``/``auto`` spelling."""
    aliases = {"auto": Mode.PRIVATE, "interval": Mode.PUBLIC, "public": Mode.PUBLIC, "private": Mode.PRIVATE}
    if value not in aliases:
        raise DevnetError(f"unknown mode {value!r} (known: public, private; auto and interval also read)")
    return aliases[value]


@dataclass
class DrillResult:
    scenario: str
    mode: Mode
    defended: bool
    baseline_loss_usd: float
    loss_usd: float
    ttd_ms: float | None = None
    ttd_blocks: int | None = None
    ttc_ms: float | None = None
    ttc_blocks: int | None = None
    deploy_ttd_ms: float | None = None
    """First high or critical finding, from the broadcast of the attack contract's deployment."""
    deploy_ttd_blocks: int | None = None
    """The same in blocks, from the block that mined the deployment (0: found in that block)."""
    deploy_ttc_ms: float | None = None
    """First confirmed guardian transaction, from the broadcast of the attack contract's deployment."""
    deploy_ttc_blocks: int | None = None
    benign_blocks: int = 0
    """Honest blocks mined after each prepare and set-up step in this drill (0 for a quiet scenario)."""
    alerts: int = 0
    actions: list[str] = field(default_factory=list)
    incident_id: str | None = None
    fault: str | None = None
    strike_block: int = 0
    baseline_series: Series = field(default_factory=list)
    """(blocks after the strike's broadcast, USD at risk) without defense."""
    series: Series = field(default_factory=list)
    """The same with the defense (equal to ``baseline_series`` when undefended)."""
    findings: dict[str, int] = field(default_factory=dict)
    """High and critical findings by monitor (for the scorecard's detail)."""
    errors: list[str] = field(default_factory=list)
    """Errors that ended a stage of the defense during the drill."""
    store_url: str | None = None
    """The defended play's store (its incidents, alerts, actions and audit chain)."""

    @property
    def preserved(self) -> float:
        if self.baseline_loss_usd <= 0:
            return 1.0 if self.loss_usd <= 0 else 0.0
        return max(0.0, min(1.0, 1.0 - self.loss_usd / self.baseline_loss_usd))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "mode": str(self.mode),
            "defended": self.defended,
            "baseline_loss_usd": round(self.baseline_loss_usd, 2),
            "loss_usd": round(self.loss_usd, 2),
            "preserved": round(self.preserved, 4),
            "ttd_ms": _ms(self.ttd_ms),
            "ttd_blocks": self.ttd_blocks,
            "ttc_ms": _ms(self.ttc_ms),
            "ttc_blocks": self.ttc_blocks,
            "deploy_ttd_ms": _ms(self.deploy_ttd_ms),
            "deploy_ttd_blocks": self.deploy_ttd_blocks,
            "deploy_ttc_ms": _ms(self.deploy_ttc_ms),
            "deploy_ttc_blocks": self.deploy_ttc_blocks,
            "benign_blocks": self.benign_blocks,
            "alerts": self.alerts,
            "actions": self.actions,
            "incident_id": self.incident_id,
        }
        if self.fault:
            out["fault"] = self.fault
        return out


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def contained(venue: Venue) -> bool:
    guard = venue.guard.functions
    return bool(guard.isVenuePaused().call()) or any(guard.isMarketPaused(m).call() for m in MARKETS)


@dataclass
class _Play:
    """One play's measurements, taken by the player thread."""

    loss: int = 0
    broadcast_ms: float = 0.0
    broadcast_head: int = 0
    deploy_ms: float = 0.0
    """Wall-clock ms at the broadcast of the attack contract's deployment (0: none was played)."""
    deploy_block: int = 0
    series: Series = field(default_factory=list)
    result: Any = None


@dataclass
class DrillOptions:
    mode: Mode = Mode.PRIVATE
    defended: bool = True
    fault: str | None = None
    benign_blocks: int = 2
    """Honest blocks mined after each prepare and set-up step (none during the strike, so that the loss
    measured is the attack's alone): the defense watches honest users' transactions around the attack's
    set-up. A scenario whose ``quiet_reason`` says why plays without them."""
    time_scale: float = 0.02
    max_pause: float = 1.0
    seed: int = 7
    settle_seconds: float = 30.0
    """After the strike, how long to wait for the follower to catch up and every sent action to have
    an outcome (an action that can never land, e.g. a guardian without gas, waits all of it)."""
    workdir: Path | None = None
    on_event: Callable[[str, Any], None] | None = None
    """Called with (topic, message) for what the pipeline publishes, and ("step", StepResult)."""


def _wait_block_after(w3: Web3, current: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.block_number <= current and time.monotonic() < deadline:
        time.sleep(0.01)


def _is_exploit(step: Step, venue: Venue) -> bool:
    """A strike step that acts on the venue or through an attack contract; funding the attack contract
    with tokens or ether is still preparation (times count from the first exploit transaction)."""
    tokens = {venue.usd.address.lower(), venue["thin_token"].address.lower()}
    return step.to is not None and bool(step.data) and step.to.lower() not in tokens


def _play(
    run: ScenarioRun, node: Anvil, traffic: BenignTraffic, opts: DrillOptions, fault: Fault | None, pace: bool
) -> _Play:
    """Play every step; benign blocks around them; the strike as the mode says. Runs in a thread.
    ``pace``: the defended play (real-time attacker waits in private mode, the fault injected)."""
    w3, venue, out = run.w3, run.venue, _Play()
    run.fund_dirty_wallet()
    public = False
    benign = benign_blocks(run.scenario, opts)
    for phase, step in run.steps():
        exploit = phase is Phase.STRIKE and _is_exploit(step, venue)
        if exploit and not out.broadcast_head:
            out.series.append((0, venue.balances().at_risk / USD))
            if opts.mode is Mode.PUBLIC and not contained(venue):
                node.rpc("evm_setIntervalMining", 1)
                public = True
        if public:
            _wait_block_after(w3, w3.eth.block_number)
        if exploit and not out.broadcast_head:
            out.broadcast_head = w3.eth.block_number
            out.broadcast_ms = time.time() * 1000
        deployment = phase is Phase.SETUP and step.to is None and not out.deploy_block
        if deployment:
            out.deploy_ms = time.time() * 1000
        result = run.execute(phase, step)
        if deployment and result.block is not None:
            out.deploy_block = result.block
        if opts.on_event is not None and pace:
            opts.on_event("step", result)
        if phase is not Phase.STRIKE:
            if benign:
                traffic.run(benign)
            continue
        if fault is not None:
            fault.after_strike_step(node, venue, len(out.series))
        if public and contained(venue):
            node.rpc("evm_setIntervalMining", 0)
            node.rpc("evm_setAutomine", True)
            public = False
        if pace and not public:
            time.sleep(min(step.wait_seconds * opts.time_scale, opts.max_pause))
        out.series.append((w3.eth.block_number - out.broadcast_head, venue.balances().at_risk / USD))
    if public:
        node.rpc("evm_setIntervalMining", 0)
        node.rpc("evm_setAutomine", True)
    out.result = run.finish()
    out.loss = out.result.loss
    out.series.append((w3.eth.block_number - out.broadcast_head, venue.balances().at_risk / USD))
    return out


def benign_blocks(scenario: Scenario, opts: DrillOptions) -> int:
    """Honest blocks after each prepare and set-up step: the option's, or 0 for a quiet scenario."""
    return 0 if scenario.quiet_reason else opts.benign_blocks


def measure(result: DrillResult, observed: Observed, played: _Play) -> None:
    """Fill detection, containment, alerts, actions and the incident from what the pipeline published."""
    serious = observed.serious()
    if serious:
        first = min(serious, key=observed.seen)
        if played.broadcast_head:
            result.ttd_ms = observed.seen(first) - played.broadcast_ms
            result.ttd_blocks = first.block_number - played.broadcast_head
        if played.deploy_block:
            result.deploy_ttd_ms = observed.seen(first) - played.deploy_ms
            result.deploy_ttd_blocks = first.block_number - played.deploy_block
    calls = observed.confirmed()
    if calls:
        first_call = min(calls, key=lambda a: a.at_ms)
        block = first_call.detail.get("block_number")
        if played.broadcast_head:
            result.ttc_ms = first_call.at_ms - played.broadcast_ms
            result.ttc_blocks = int(block) - played.broadcast_head if block is not None else None
        if played.deploy_block:
            result.deploy_ttc_ms = first_call.at_ms - played.deploy_ms
            result.deploy_ttc_blocks = int(block) - played.deploy_block if block is not None else None
    result.alerts = len({a.fingerprint for a in observed.alerts})
    names: list[str] = []
    for a in observed.actions:
        if a.step.value in ("confirmed", "failed", "proposed"):
            names.append(f"{a.playbook}.{a.action}" + ("" if a.step.value == "confirmed" else f" ({a.step})"))
    result.actions = sorted(set(names))
    result.incident_id = observed.incident_id()
    result.findings = {}
    for f in observed.serious():
        result.findings[f.monitor_id] = result.findings.get(f.monitor_id, 0) + 1


async def run_drill(scenario: Scenario, build: Build, opts: DrillOptions) -> DrillResult:
    """One scenario on a fresh devnet: the baseline, then (unless undefended) the defended play."""
    with contextlib.ExitStack() as stack:
        folder = opts.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bg-drill-")))
        folder.mkdir(parents=True, exist_ok=True)
        node = stack.enter_context(Anvil(AnvilOptions(mode=BlockMode.AUTO, extra_args=DRILL_NODE_ARGS)))
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        options = VenueOptions.with_switches(*scenario.switches)
        venue = await asyncio.to_thread(deploy_venue, deployer, options)
        await asyncio.to_thread(BenignTraffic(venue, BenignConfig(seed=opts.seed)).fund)
        snapshot = node.snapshot()
        traffic = BenignTraffic(venue, BenignConfig(seed=opts.seed))
        baseline = await asyncio.to_thread(
            _play, ScenarioRun(scenario, venue, build), node, traffic, opts, None, False
        )
        result = DrillResult(
            scenario.name, opts.mode, opts.defended, baseline.loss / USD, baseline.loss / USD
        )
        result.baseline_series = result.series = baseline.series
        result.strike_block = baseline.broadcast_head
        result.benign_blocks = benign_blocks(scenario, opts)
        if not opts.defended:
            return result
        node.revert(snapshot)
        result.fault = opts.fault
        fault = make_fault(opts.fault)
        deployer.manifest(node.url).write(folder / "manifest.json")
        proxy = await fault.start_proxy(node.url) if fault is not None else None
        keystore, password = write_keystore(folder, bytes(venue.key("guardian").key))
        ws_url = node.ws_url if opts.mode is Mode.PUBLIC else None
        config = defended_config(
            folder, folder / "manifest.json", keystore, ws_url=ws_url, rpc_url=proxy
        )  # fmt: skip
        if fault is not None:
            fault.before_defense(node, venue)
        defense = await Defense.start(config, password, w3.eth.block_number + 1, on_event=opts.on_event)
        try:
            played = await asyncio.to_thread(
                _play, ScenarioRun(scenario, venue, build), node,
                BenignTraffic(venue, BenignConfig(seed=opts.seed)), opts, fault, True,
            )  # fmt: skip
            await defense.settle(w3.eth.block_number, within=opts.settle_seconds)
        finally:
            await defense.close()
            if fault is not None:
                await fault.stop_proxy()
        result.loss_usd = played.loss / USD
        result.errors = list(defense.errors)
        result.store_url = f"sqlite:///{folder.resolve() / 'breakglass.db'}" if opts.workdir else None
        result.series = played.series
        measure(result, defense.observed, played)
        return result


def run_drills(
    scenarios: list[Scenario],
    modes: list[Mode],
    build: Build,
    options: DrillOptions | None = None,
    on_result: Callable[[DrillResult], None] | None = None,
    runs: int = 1,
) -> list[DrillResult]:
    """Every scenario in every mode, defended, one fresh devnet each (mode by mode, as the scorecard
    lists them), ``runs`` plays of each in a row; ``options`` gives everything but the mode.
    Blocking: call it outside an event loop."""
    results = []
    for mode in modes:
        for scenario in scenarios:
            opts = dataclasses.replace(options or DrillOptions(), mode=mode)
            for _ in range(runs):
                results.append(asyncio.run(run_drill(scenario, build, opts)))
                if on_result is not None:
                    on_result(results[-1])
    return results
