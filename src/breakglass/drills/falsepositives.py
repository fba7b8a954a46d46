"""The false-positive drill: benign traffic on the safe venue with breakglass defending it (the example
configuration, blocks and, by default, the public mempool too); every alert and automatic action counts.

What ``breakglass drill benign`` runs unless ``--no-defense``. The goal: zero automatic actions and zero
critical alerts however long the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from web3 import Web3

from breakglass.alerts.models import AlertRow
from breakglass.devnet.anvil import Anvil, AnvilOptions
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.venue import VenueOptions, deploy_venue
from breakglass.domain import Severity
from breakglass.drills.benign import BenignConfig, BenignReport, BenignTraffic
from breakglass.drills.defense import Defense, defended_config, write_keystore
from breakglass.drills.runner import DRILL_NODE_ARGS
from breakglass.messages.actions import ActionStep
from breakglass.store.db import Store

__all__ = ["DefendedBenign", "run_defended_benign"]

TAKEN = (ActionStep.SUBMITTED, ActionStep.PROPOSED, ActionStep.NOTIFY, ActionStep.ESCALATE)


@dataclass
class DefendedBenign:
    traffic: BenignReport
    alerts: dict[str, int]
    actions: list[dict[str, Any]] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)
    """Findings by monitor (every severity)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "blocks": self.traffic.blocks,
            "transactions": self.traffic.transactions,
            "alerts": self.alerts,
            "actions": self.actions,
        }


async def _alerts_by_severity(url: str) -> dict[str, int]:
    counts = {s.name.lower(): 0 for s in Severity}
    store = Store(url)
    try:
        async with store.sessions() as session:
            rows = await session.execute(select(AlertRow.severity, func.count()).group_by(AlertRow.severity))
            for severity, count in rows.all():
                counts[Severity(severity).name.lower()] = int(count)
    finally:
        await store.close()
    return counts


async def run_defended_benign(
    build: Build, blocks: int, config: BenignConfig, *, mempool: bool = True, workdir: Path | None = None
) -> DefendedBenign:
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bg-benign-")))
        folder.mkdir(parents=True, exist_ok=True)
        node = stack.enter_context(Anvil(AnvilOptions(extra_args=DRILL_NODE_ARGS)))
        w3 = Web3(Web3.HTTPProvider(node.url))
        deployer = Deployer(w3, build)
        venue = await asyncio.to_thread(deploy_venue, deployer, VenueOptions())
        traffic = BenignTraffic(venue, config)
        await asyncio.to_thread(traffic.fund)
        deployer.manifest(node.url).write(folder / "manifest.json")
        keystore, password = write_keystore(folder, bytes(venue.key("guardian").key))
        path = defended_config(
            folder, folder / "manifest.json", keystore, ws_url=node.ws_url if mempool else None
        )
        defense = await Defense.start(path, password, w3.eth.block_number + 1)
        try:
            report = await asyncio.to_thread(traffic.run, blocks)
            await defense.settle(w3.eth.block_number, within=120)
        finally:
            await defense.close()
        observed = defense.observed
        actions = [
            {"playbook": a.playbook, "action": a.action, "step": str(a.step), "target": a.target,
             "monitor": a.monitor_id}
            for a in observed.actions
            if a.step in TAKEN
        ]  # fmt: skip
        findings: dict[str, int] = {}
        for f in observed.findings:
            findings[f.monitor_id] = findings.get(f.monitor_id, 0) + 1
        alerts = await _alerts_by_severity(f"sqlite:///{folder.resolve() / 'breakglass.db'}")
        return DefendedBenign(report, alerts, actions, findings)
