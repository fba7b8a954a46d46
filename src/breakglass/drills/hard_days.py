"""The hard-days drill: each segment of ``benign.harddays`` played undefended and again, from the same
snapshot, with breakglass defending with the shipped configuration (blocks and the public mempool).

What ``breakglass drill hard-days`` runs. Per segment: honest transactions, those a containment made
revert ("reverted because of us"), automatic actions, withheld ones, alerts by monitor and severity,
and the value at stake at the end (LP equity + insurance fund) without and with the defense: a
containment's harm counts as loss, so the defended figure must never be below the undefended one.
The goal: 0 automatic actions that make an honest transaction revert, on every segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3

from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import Venue, VenueOptions, deploy_venue
from breakglass.drills.benign.harddays import SEGMENTS, HardDayConfig, HardDays, SegmentTraffic
from breakglass.drills.defense import Defense, defended_config, write_keystore
from breakglass.drills.runner import DRILL_NODE_ARGS
from breakglass.messages.actions import ActionStep

__all__ = ["TAKEN", "HardDaysReport", "SegmentResult", "run_hard_days"]

TAKEN = (ActionStep.SUBMITTED, ActionStep.PROPOSED, ActionStep.NOTIFY, ActionStep.ESCALATE)
"""Steps that say a playbook acted: a call sent or proposed, a notification, an escalation."""


@dataclass
class SegmentResult:
    segment: str
    defended: SegmentTraffic
    baseline: SegmentTraffic | None
    stake_undefended: int
    """LP equity (vault.totalAssets) + insurance fund at the end, undefended (collateral units)."""
    stake_defended: int | None
    actions: list[dict[str, Any]] = field(default_factory=list)
    """Automatic actions: calls sent (submitted) or proposed, and playbooks' notify/escalate steps."""
    withheld: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, dict[str, int]] = field(default_factory=dict)
    """monitor -> severity -> findings."""

    @property
    def containment_loss(self) -> int:
        """What the defense cost: undefended stake minus defended stake (> 0: the defense made it worse)."""
        if self.stake_defended is None:
            return 0
        return self.stake_undefended - self.stake_defended

    @property
    def passed(self) -> bool:
        return (
            not self.actions
            and not self.defended.ours
            and not self.defended.other_reverts
            and self.containment_loss <= 0
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "passed": self.passed,
            "honest_transactions": self.defended.transactions,
            "reverted_by_containment": len(self.defended.ours),
            "other_reverts": len(self.defended.other_reverts),
            "automatic_actions": self.actions,
            "withheld": self.withheld,
            "alerts": self.alerts,
            "stake_undefended_usd": self.stake_undefended / 1e6,
            "stake_defended_usd": None if self.stake_defended is None else self.stake_defended / 1e6,
            "containment_loss_usd": self.containment_loss / 1e6,
            "traffic": self.defended.to_json(),
            "baseline_traffic": self.baseline.to_json() if self.baseline else None,
        }


@dataclass
class HardDaysReport:
    segments: list[SegmentResult]
    defended: bool

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.segments)

    def to_json(self) -> dict[str, Any]:
        return {
            "defended": self.defended,
            "passed": self.passed,
            "segments": [s.to_json() for s in self.segments],
        }


def _stake(venue: Venue) -> int:
    total = int(venue.vault.functions.totalAssets().call())
    return total + int(venue["insurance"].functions.balance().call())


async def run_hard_days(
    build: Build,
    config: HardDayConfig,
    segments: list[str] | None = None,
    *,
    defended: bool = True,
    mempool: bool = True,
    pending_wait: float = 0.3,
    workdir: Path | None = None,
) -> HardDaysReport:
    """Play ``segments`` (all by default) on one fresh devnet, each from the same snapshot."""
    chosen = segments or list(SEGMENTS)
    unknown = [s for s in chosen if s not in SEGMENTS]
    if unknown:
        raise ValueError(f"unknown hard-day segment(s) {unknown}; known: {', '.join(SEGMENTS)}")
    results: list[SegmentResult] = []
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bg-hard-")))
        folder.mkdir(parents=True, exist_ok=True)
        node = stack.enter_context(Anvil(AnvilOptions(extra_args=DRILL_NODE_ARGS)))
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = await asyncio.to_thread(deploy_venue, deployer, VenueOptions())
        days = HardDays(venue, config)
        zap = build.artifacts["EpochZap"]
        await asyncio.to_thread(days.prepare, list(zap.abi), zap.bytecode)
        deployer.manifest(node.url).write(folder / "manifest.json")
        keystore, password = write_keystore(folder, bytes(venue.key("guardian").key))
        base = node.snapshot()
        for segment in chosen:
            node.revert(base)
            base = node.snapshot()
            days.pending_wait = 0.0
            baseline = await asyncio.to_thread(days.run, segment)
            undefended = _stake(venue)
            if not defended:
                results.append(SegmentResult(segment, baseline, None, undefended, None))
                continue
            node.revert(base)
            base = node.snapshot()
            here = folder / segment
            here.mkdir(exist_ok=True)
            path = defended_config(
                here, folder / "manifest.json", keystore, ws_url=node.ws_url if mempool else None
            )
            defense = await Defense.start(path, password, w3.eth.block_number + 1)
            try:
                days.pending_wait = pending_wait if mempool else 0.0
                traffic = await asyncio.to_thread(days.run, segment)
                await defense.settle(w3.eth.block_number, within=60)
            finally:
                await defense.close()
            observed = defense.observed
            # a call is published once sent (submitted) or proposed to a Safe; notify and escalate steps
            # say a playbook fired without touching the chain
            actions = [
                {"playbook": a.playbook, "action": a.action, "target": a.target, "monitor": a.monitor_id,
                 "step": str(a.step)}
                for a in observed.actions
                if a.step in TAKEN
            ]  # fmt: skip
            withheld = [
                {"playbook": a.playbook, "action": a.action, "target": a.target, "monitor": a.monitor_id,
                 "look": dict(a.detail.get("look") or {})}
                for a in observed.actions
                if a.step is ActionStep.WITHHELD
            ]  # fmt: skip
            alerts: dict[str, Counter[str]] = {}
            for f in observed.findings:
                alerts.setdefault(f.monitor_id, Counter())[f.severity.name.lower()] += 1
            results.append(
                SegmentResult(
                    segment,
                    traffic,
                    baseline,
                    undefended,
                    _stake(venue),
                    actions,
                    withheld,
                    {m: dict(c) for m, c in sorted(alerts.items())},
                )
            )
    return HardDaysReport(results, defended)
