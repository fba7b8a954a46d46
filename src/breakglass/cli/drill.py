"""``breakglass drill run|benign``: play exploit scenarios and benign traffic on a fresh devnet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors, stderr
from breakglass.devnet.anvil import BlockMode
from breakglass.devnet.solc import compile_contracts

app = typer.Typer(help="Rehearse incidents: exploit scenarios and benign traffic on a local devnet.")
console = Console()


@app.command("list")
def list_scenarios() -> None:
    """List the exploit scenarios: the incident each re-creates and the switch it needs."""
    from breakglass.drills.scenarios import SCENARIOS

    table = Table(title="exploit scenarios (docs/scenarios.md)")
    for column in ("scenario", "incident", "switch", "target"):
        table.add_column(column, no_wrap=column == "scenario")
    for s in SCENARIOS.values():
        table.add_row(s.name, s.incident, ", ".join(s.switches), s.target_label)
    console.print(table)


@app.command("run")
@handle_errors
def run(
    scenario: Annotated[str, typer.Option("--scenario", help="a scenario name, or 'all'")] = "all",
    no_defense: Annotated[bool, typer.Option("--no-defense", help="play undefended")] = False,
    safe: Annotated[bool, typer.Option("--safe", help="on the safe venue (switch off)")] = False,
    mode: Annotated[BlockMode, typer.Option(help="auto (private flow) or interval")] = BlockMode.AUTO,
    block_time: Annotated[float, typer.Option(help="seconds per block in interval mode")] = 1.0,
    time_scale: Annotated[float, typer.Option(help="interval mode: real seconds per scenario second")] = 0.02,
    json_path: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """Play scenarios on a fresh devnet each and report the loss they caused."""
    from breakglass.drills.scenarios.devnet import play_on_fresh_devnet, resolve

    if not no_defense:
        stderr.print("[red]defended drills are not available yet: pass --no-defense[/red]")
        raise typer.Exit(2)
    scenarios = resolve(scenario)
    build = compile_contracts()
    table = Table(title="drill run (undefended)" + (" on the safe venue" if safe else ""))
    for column in ("scenario", "target", "target USD", "loss USD", "loss %", "steps", "reverted"):
        left = column in ("scenario", "target")
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "scenario")
    results = []
    for s in scenarios:
        with console.status(f"playing {s.name}"):
            r = play_on_fresh_devnet(
                s, vulnerable=not safe, mode=mode, block_time=block_time, time_scale=time_scale,
                build=build,
            )  # fmt: skip
        results.append(r.to_json())
        table.add_row(
            r.scenario, r.target_label, f"{r.target_usd:,.0f}", f"{r.loss_usd:,.0f}",
            f"{100 * r.fraction:.1f}", str(len(r.steps)), str(r.reverted),
        )  # fmt: skip
    console.print(table)
    if json_path:
        json_path.write_text(json.dumps({"results": results}, indent=2), encoding="utf-8")
        console.print(f"results: {json_path}")


@app.command("benign")
@handle_errors
def benign(
    blocks: Annotated[int, typer.Option("--blocks", help="blocks to generate")] = 1_000,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same traffic)")] = 7,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the report as JSON")] = None,
) -> None:
    """Generate a busy day of honest traffic on a fresh devnet; report blocks, transactions and reverts."""
    from breakglass.drills.benign import BenignConfig, run_on_fresh_devnet

    with console.status(f"generating {blocks} blocks of benign traffic"):
        report = run_on_fresh_devnet(BenignConfig(seed=seed), blocks)
    table = Table(title=f"benign traffic (seed {seed})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.summary().items():
        table.add_row(key, str(value))
    console.print(table)
    if json_path:
        json_path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    if report.unexpected_reverts:
        raise typer.Exit(1)
