"""``breakglass demo``: one exploit against the reference venue, broadcast to a public mempool while
benign traffic runs, breakglass defending it live; then the scorecard and the incident's post-mortem.

Nothing is staged: a real anvil, the venue deployed with the scenario's vulnerability switched on, the
example configuration (monitors and playbooks), the whole pipeline built by ``build_app``, a SQLite
store in the demo folder, and the post-mortem written by ``breakglass.incidents.report``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from breakglass.clock import SystemClock
from breakglass.devnet.solc import compile_contracts
from breakglass.domain import Finding, Severity
from breakglass.drills.runner import DrillOptions, DrillResult, Mode, run_drill
from breakglass.drills.scenarios import SCENARIOS, StepResult
from breakglass.drills.scorecard import ScorecardFiles, card, write_scorecard
from breakglass.incidents.report import ReportFiles, gather, write_report
from breakglass.incidents.service import IncidentService
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.messages.alerts import AlertChange
from breakglass.messages.incidents import IncidentChange
from breakglass.store.db import Store

__all__ = ["DEMO_SCENARIO", "DemoOutcome", "run_demo", "write_postmortem"]

DEMO_SCENARIO = "forwarder-oracle"
SHOWN_STEPS = {ActionStep.SUBMITTED, ActionStep.CONFIRMED, ActionStep.FAILED, ActionStep.ESCALATE}


@dataclass
class DemoOutcome:
    result: DrillResult
    scorecard: ScorecardFiles
    report: ReportFiles | None
    seconds: float


class LiveLog:
    """Prints what happens as it happens: the attacker's transactions, findings, actions, the incident."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()

    def _t(self) -> str:
        return f"[dim]{time.monotonic() - self.started:6.1f}s[/dim]"

    def __call__(self, topic: str, message: Any) -> None:
        line = self._line(topic, message)
        if line:
            self.console.print(f"{self._t()} {line}")

    def _line(self, topic: str, message: Any) -> str | None:
        if isinstance(message, StepResult):
            status = "[green]ok[/green]" if message.ok else "[red]reverted[/red]"
            return f"block {message.block}  attacker [bold]{message.phase}[/bold]: {message.label} ({status})"
        if isinstance(message, Finding) and message.severity >= Severity.HIGH:
            colour = "red" if message.severity >= Severity.CRITICAL else "yellow"
            return (
                f"block {message.block_number}  [{colour}]{message.severity} finding[/{colour}] "
                f"{message.monitor_id} ({message.stage}): {message.title}"
            )
        if isinstance(message, ActionEvent) and message.step in SHOWN_STEPS:
            where = message.detail.get("block_number")
            at = f"block {where}  " if where is not None else ""
            return (
                f"{at}[cyan]action {message.step}[/cyan] {message.playbook}.{message.action} {message.target}"
            )
        if isinstance(message, IncidentChange) and message.change in ("opened", "escalated"):
            return f"[magenta]incident {message.incident_id} {message.change}[/magenta] {message.value or ''}"
        if isinstance(message, AlertChange) and message.status == "active" and message.count == 1:
            return f"[dim]alert {message.fingerprint[:10]} active[/dim]"
        return None


async def write_postmortem(result: DrillResult, out_dir: Path) -> ReportFiles | None:
    """The incident's post-mortem (Markdown + HTML + value-at-risk plot) from the drill's store."""
    if result.incident_id is None or result.store_url is None:
        return None
    store = Store(result.store_url)
    try:
        async with store.sessions() as session:
            series = [(result.strike_block + b, v) for b, v in result.series]
            data = await gather(session, IncidentService(SystemClock()), result.incident_id, series)
    finally:
        await store.close()
    return await asyncio.to_thread(write_report, data, out_dir)


async def run_demo(console: Console, folder: Path, scenario: str = DEMO_SCENARIO) -> DemoOutcome:
    started = time.monotonic()
    await asyncio.to_thread(shutil.rmtree, folder, True)
    await asyncio.to_thread(folder.mkdir, parents=True)
    chosen = SCENARIOS[scenario]
    console.rule(f"[bold]breakglass demo[/bold]: {chosen.name} — {chosen.incident}")
    console.print(chosen.summary)
    console.print(
        f"A local anvil, the reference venue with [bold]{', '.join(chosen.switches)}[/bold] switched on, "
        "benign traders around it. First the attack plays undefended (the baseline), then again from "
        "the same snapshot with breakglass watching blocks and the public mempool, and responding with the "
        "examples' playbooks (examples/playbooks.venue.yaml).\n"
    )
    build = compile_contracts()
    log = LiveLog(console)
    # The examples' playbooks: the strike reaches the public mempool and is front-run.
    opts = DrillOptions(mode=Mode.PUBLIC, workdir=folder / "drill", on_event=log, benign_blocks=2)
    result = await run_drill(chosen, build, opts)
    console.print()
    console.print(card(result))
    scorecard = write_scorecard([result], folder / "scorecard")
    report = await write_postmortem(result, folder / "report")
    seconds = time.monotonic() - started
    console.print(f"scorecard: {scorecard.markdown} and {scorecard.html}")
    if report is not None:
        console.print(f"post-mortem of {result.incident_id}: {report.markdown} and {report.html}")
    console.print(f"store: {result.store_url}   ({seconds:.0f} s)")
    return DemoOutcome(result, scorecard, report, seconds)
