"""``breakglass drill list|run|benign``: exploit scenarios and benign traffic on a fresh devnet, defended
by breakglass with the example configuration (or undefended), scored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors
from breakglass.logs import configure_logging

__all__ = ["app"]

if TYPE_CHECKING:
    from breakglass.drills.runner import Mode
    from breakglass.drills.scenarios import Scenario

app = typer.Typer(help="Rehearse incidents: exploit scenarios and benign traffic on a local devnet.")


def _console() -> Console:
    return Console()


MODE_HELP = "public (a block a second, pending txs visible) or private (automine); auto/interval also read"


@app.command("list")
def list_scenarios() -> None:
    """List the exploit scenarios: the incident each re-creates and the switch it needs."""
    from breakglass.drills.scenarios import SCENARIOS

    table = Table(title="exploit scenarios (docs/scenarios.md)")
    for column in ("scenario", "incident", "switch", "target", "honest traffic in drills"):
        table.add_column(column, no_wrap=column == "scenario")
    for s in SCENARIOS.values():
        honest = f"none: {s.quiet_reason}" if s.quiet_reason else "between the set-up steps"
        table.add_row(s.name, s.incident, ", ".join(s.switches), s.target_label, honest)
    _console().print(table)


def _quiet(verbose: bool) -> None:
    if not verbose:
        configure_logging(level="critical")


@app.command("run")
@handle_errors
def run(
    scenario: Annotated[str, typer.Option("--scenario", help="a scenario name, or 'all'")] = "all",
    mode: Annotated[str, typer.Option(help=MODE_HELP)] = "private",
    no_defense: Annotated[bool, typer.Option("--no-defense", help="play undefended")] = False,
    safe: Annotated[bool, typer.Option("--safe", help="undefended, on the safe venue (switch off)")] = False,
    fault: Annotated[
        str | None,
        typer.Option(help="node-restart, rpc-errors, reorg, guardian-no-gas or slow-node (docs/drills.md)"),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="folder for scorecard.md/.html and plots")] = None,
    block_time: Annotated[float, typer.Option(help="--safe/--no-defense interval mode: s per block")] = 1.0,
    time_scale: Annotated[float, typer.Option(help="real seconds per scenario second")] = 0.02,
    benign_blocks: Annotated[
        int,
        typer.Option(
            help="honest blocks after each prepare/set-up step; a scenario with a quiet_reason plays none "
            "(docs/drills.md)"
        ),
    ] = 2,
    no_setup_playbook: Annotated[
        bool,
        typer.Option(
            "--no-setup-playbook",
            hidden=True,
            help="deprecated, no effect: drills always run the examples' playbooks alone (issue 16)",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="keep the pipeline's logs")] = False,
) -> None:
    """Play scenarios on a fresh devnet each: the loss undefended, and with breakglass defending."""
    from breakglass.devnet.solc import compile_contracts
    from breakglass.drills.faults import make_fault
    from breakglass.drills.runner import DrillOptions, parse_mode, run_drill
    from breakglass.drills.scenarios.devnet import resolve
    from breakglass.drills.scorecard import rich_table, write_scorecard

    if no_setup_playbook:
        _console().print(
            "--no-setup-playbook is deprecated and has no effect: there is no set-up playbook any more"
        )
    scenarios = resolve(scenario)
    chosen_mode = parse_mode(mode)
    make_fault(fault)  # an unknown fault is an error before anything starts
    if safe:
        _safe_venue(scenarios, chosen_mode, block_time, time_scale, json_path)
        return
    _quiet(verbose)
    build = compile_contracts()
    results = []
    for s in scenarios:
        opts = DrillOptions(
            mode=chosen_mode, defended=not no_defense, fault=fault, time_scale=time_scale,
            benign_blocks=benign_blocks,
        )  # fmt: skip
        with _console().status(f"{s.name} ({chosen_mode}{', ' + fault if fault else ''})"):
            results.append(asyncio.run(run_drill(s, build, opts)))
        r = results[-1]
        _console().print(f"{r.scenario}: loss {r.loss_usd:,.0f} of {r.baseline_loss_usd:,.0f} USD")
        if benign_blocks and s.quiet_reason:
            _console().print(f"  played without honest traffic: {s.quiet_reason}")
        for error in r.errors:
            _console().print(f"[red]a defense stage failed:[/red] {error}")
    _console().print(rich_table(results))
    if json_path:
        json_path.write_text(json.dumps([r.to_json() for r in results], indent=2), encoding="utf-8")
        _console().print(f"results: {json_path}")
    if out:
        files = write_scorecard(results, out)
        _console().print(f"scorecard: {files.markdown} and {files.html}")


def _safe_venue(
    scenarios: list[Scenario], mode: Mode, block_time: float, time_scale: float, json_path: Path | None
) -> None:
    """The scenarios undefended on the safe venue: each must lose the attacker money."""
    from breakglass.devnet.anvil import BlockMode
    from breakglass.devnet.solc import compile_contracts
    from breakglass.drills.runner import Mode
    from breakglass.drills.scenarios.devnet import play_on_fresh_devnet

    build = compile_contracts()
    block_mode = BlockMode.INTERVAL if mode is Mode.PUBLIC else BlockMode.AUTO
    table = Table(title="drill run (undefended) on the safe venue")
    for column in ("scenario", "target", "target USD", "loss USD", "loss %", "steps", "reverted"):
        left = column in ("scenario", "target")
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "scenario")
    results = []
    for s in scenarios:
        with _console().status(f"playing {s.name}"):
            r = play_on_fresh_devnet(
                s,
                vulnerable=False,
                mode=block_mode,
                block_time=block_time,
                time_scale=time_scale,
                build=build,
            )
        results.append(r.to_json())
        table.add_row(
            r.scenario, r.target_label, f"{r.target_usd:,.0f}", f"{r.loss_usd:,.0f}",
            f"{100 * r.fraction:.1f}", str(len(r.steps)), str(r.reverted),
        )  # fmt: skip
    _console().print(table)
    if json_path:
        json_path.write_text(json.dumps({"results": results}, indent=2), encoding="utf-8")
        _console().print(f"results: {json_path}")


@app.command("benign")
@handle_errors
def benign(
    blocks: Annotated[int, typer.Option("--blocks", help="blocks to generate")] = 1_000,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same traffic)")] = 7,
    no_defense: Annotated[bool, typer.Option("--no-defense", help="traffic only, nobody watching")] = False,
    no_mempool: Annotated[bool, typer.Option("--no-mempool", help="defend from blocks only")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the report as JSON")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="keep the pipeline's logs")] = False,
) -> None:
    """Honest traffic on the safe venue with breakglass defending: alerts by severity, actions taken."""
    from breakglass.devnet.solc import compile_contracts
    from breakglass.drills.benign import BenignConfig, run_on_fresh_devnet
    from breakglass.drills.falsepositives import run_defended_benign

    config = BenignConfig(seed=seed)
    if no_defense:
        with _console().status(f"generating {blocks} blocks of benign traffic"):
            report = run_on_fresh_devnet(config, blocks)
        payload = report.to_json()
        alerts = None
    else:
        _quiet(verbose)
        with _console().status(f"{blocks} blocks of benign traffic, breakglass defending"):
            defended = asyncio.run(
                run_defended_benign(compile_contracts(), blocks, config, mempool=not no_mempool)
            )
        report = defended.traffic
        payload = {**defended.to_json(), "reverts": report.unexpected_reverts, "seconds": report.wall_seconds}
        alerts = defended
    table = Table(title=f"benign traffic (seed {seed})" + ("" if no_defense else ", defended"))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in report.summary().items():
        table.add_row(key, str(value))
    if alerts is not None:
        for severity, count in alerts.alerts.items():
            table.add_row(f"alerts {severity}", str(count))
        table.add_row("automatic actions", str(len(alerts.actions)))
        table.add_row("findings by monitor", json.dumps(alerts.findings))
    _console().print(table)
    if json_path:
        json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    if report.unexpected_reverts or (alerts is not None and alerts.actions):
        raise typer.Exit(1)


@app.command("hard-days")
@handle_errors
def hard_days(
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            help="crash, squeeze, bank-run, cap-raise, zap-epoch or bots (repeat); all by default",
        ),
    ] = None,
    bounded: Annotated[bool, typer.Option("--bounded", help="the short run make test plays")] = False,
    steps: Annotated[int | None, typer.Option(help="price steps of a crash or squeeze")] = None,
    step_pct: Annotated[float | None, typer.Option(help="price move per step (0.03 = 3%)")] = None,
    crowd: Annotated[
        float | None, typer.Option(help="crowded side's open interest, fraction of the cap")
    ] = None,
    run_fraction: Annotated[
        float | None, typer.Option(help="fraction of the vault a bank run redeems")
    ] = None,
    no_defense: Annotated[bool, typer.Option("--no-defense", help="traffic only, nobody watching")] = False,
    no_mempool: Annotated[bool, typer.Option("--no-mempool", help="defend from blocks only")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the report as JSON")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="keep the pipeline's logs")] = False,
) -> None:
    """Hard honest days (crash, squeeze, bank run, cap raise, zaps, bots), each undefended and defended:
    exits 1 if breakglass made an honest transaction revert, acted, or made a segment lose more."""
    import dataclasses

    from breakglass.devnet.solc import compile_contracts
    from breakglass.drills.benign.harddays import SEGMENTS, HardDayConfig
    from breakglass.drills.hard_days import run_hard_days

    unknown = [s for s in segment or () if s not in SEGMENTS]
    if unknown:
        raise typer.BadParameter(f"unknown segment(s) {', '.join(unknown)}; known: {', '.join(SEGMENTS)}",
                                 param_hint="--segment")  # fmt: skip

    config = HardDayConfig.bounded() if bounded else HardDayConfig()
    changes: dict[str, Any] = {
        "steps": steps, "step_pct": step_pct, "crowd_fraction": crowd, "run_fraction": run_fraction
    }  # fmt: skip
    config = dataclasses.replace(config, **{k: v for k, v in changes.items() if v is not None})
    _quiet(verbose)
    with _console().status("hard honest days" + ("" if no_defense else ", breakglass defending")):
        report = asyncio.run(
            run_hard_days(
                compile_contracts(), config, segment or None, defended=not no_defense, mempool=not no_mempool
            )
        )
    table = Table(title="hard honest days" + ("" if no_defense else ", defended"))
    for column in ("segment", "honest txs", "reverted by us", "other reverts", "actions", "withheld",
                   "alerts (high+critical)", "containment loss USD", "pass"):  # fmt: skip
        table.add_column(
            column, justify="left" if column == "segment" else "right", no_wrap=column == "segment"
        )
    for s in report.segments:
        serious = {m: c for m, c in s.alerts.items() if c.get("high", 0) + c.get("critical", 0)}
        table.add_row(
            s.segment, str(s.defended.transactions), str(len(s.defended.ours)),
            str(len(s.defended.other_reverts)), str(len(s.actions)), str(len(s.withheld)),
            ", ".join(f"{m} {c.get('high', 0) + c.get('critical', 0)}" for m, c in serious.items()) or "-",
            f"{s.containment_loss / 1e6:,.0f}", "yes" if s.passed else "NO",
        )  # fmt: skip
    _console().print(table)
    if json_path:
        json_path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    if not report.passed:
        raise typer.Exit(1)


TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def _load_rows(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Drill rows and how they were measured, from ``drill run --json`` (a list of rows) or from a
    ``drill scorecard --json`` / ``benchmarks.scorecard`` file (``{"drills": [...], "measured_at": ...}``,
    with ``"plays"``: every play of ``--runs N``, the medians made again from them)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    meta: dict[str, Any] = {
        "measured_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime(TIME_FORMAT),
        "command": "breakglass drill run --json",
    }
    if not isinstance(data, dict):
        return [dict(r) for r in data], meta
    meta["command"] = "breakglass drill scorecard"
    meta.update({k: data[k] for k in ("measured_at", "command", "seconds", "load_average") if k in data})
    return [dict(r) for r in data.get("plays") or data["drills"]], meta  # every play of a --runs N file


@app.command("scorecard")
@handle_errors
def scorecard(
    write: Annotated[
        Path | None, typer.Option("--write", help="rewrite this README's scorecard sections")
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option("--check", help="compare with this README's scorecard; exit 1 past the tolerances"),
    ] = None,
    mode: Annotated[str, typer.Option(help="private, public or both")] = "both",
    results: Annotated[
        Path | None,
        typer.Option("--results", help="use these drill results (a --json of drill run or of this) instead"),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write rows, drifts and tolerances")
    ] = None,
    runs: Annotated[
        int,
        typer.Option(
            "--runs", min=1, help="plays per scenario; each figure is the median of them (docs/drills.md)"
        ),
    ] = 1,
    verbose: Annotated[bool, typer.Option("--verbose", help="keep the pipeline's logs")] = False,
) -> None:
    """Every scenario, private and public, defended with the shipped examples/ configuration and honest
    traffic: the README's scorecard tables rewritten (--write) or checked for drift (--check). With
    --runs N each scenario is played N times and each figure is the median of its plays."""
    import os
    import time

    from breakglass.drills import readme

    if mode not in ("private", "public", "both"):
        raise typer.BadParameter("private, public or both", param_hint="--mode")
    modes = list(readme.MODES) if mode == "both" else [mode]
    started, when = time.monotonic(), datetime.now(UTC).strftime(TIME_FORMAT)
    flags = [f"--mode {mode}"] * (mode != "both") + [f"--runs {runs}"] * (runs > 1)
    flags += [f"--write {write}"] * bool(write)
    meta: dict[str, Any] = {
        "measured_at": when,
        "command": " ".join(
            ["breakglass drill scorecard", *flags, *[f"--json {json_path}"] * bool(json_path)]
        ),
        "load_average": os.getloadavg()[0],
    }
    plays: list[dict[str, Any]] = []
    if results is not None:
        rows, meta = _load_rows(results)
        rows = [r for r in rows if r["mode"] in modes]
    else:
        rows = _play_scorecard(modes, verbose, runs)
        meta["seconds"] = round(time.monotonic() - started, 1)
    if len(rows) > len(medians := readme.median_rows(rows)):
        plays, rows = rows, medians
    tolerance = readme.Tolerance()
    drifts: list[readme.Drift] = []
    if check is not None:
        drifts = readme.compare(check.read_text(encoding="utf-8"), rows, tolerance, modes)
        for drift in drifts:
            _console().print(f"[red]drift[/red] {drift}", soft_wrap=True)
        _console().print(f"{len(drifts)} figure(s) drifted past the tolerances" if drifts else "no drift")
    if write is not None:
        text = write.read_text(encoding="utf-8")
        note = readme.measured_note(
            str(meta.get("command")),
            str(meta.get("measured_at")),
            meta.get("seconds"),
            meta.get("load_average"),
        )
        for m in modes:
            text = readme.replace_section(text, m, readme.render_section(m, rows, note))
        write.write_text(text, encoding="utf-8")
        _console().print(f"rewrote the scorecard in {write}")
    if json_path:
        payload = {
            **meta, "average_preserved": readme.averages(rows), "tolerance": tolerance.to_json(),
            "drifts": [str(d) for d in drifts], "drills": rows,
            **({"plays": plays} if plays else {}),
        }  # fmt: skip
        json_path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    if drifts:
        raise typer.Exit(1)


def _play_scorecard(modes: list[str], verbose: bool, runs: int = 1) -> list[dict[str, Any]]:
    from breakglass.devnet.solc import compile_contracts
    from breakglass.drills.runner import DrillResult, parse_mode, run_drills
    from breakglass.drills.scenarios.devnet import resolve

    _quiet(verbose)

    def show(r: DrillResult) -> None:
        _console().print(
            f"{r.scenario} ({r.mode}): loss {r.loss_usd:,.0f} of {r.baseline_loss_usd:,.0f} USD, "
            f"preserved {100 * r.preserved:.1f}%"
        )
        for error in r.errors:
            _console().print(f"[red]a defense stage failed:[/red] {error}")

    with _console().status("playing every scenario, defended"):
        played = run_drills(
            resolve("all"), [parse_mode(m) for m in modes], compile_contracts(), on_result=show, runs=runs
        )
    return [r.to_json() for r in played]
