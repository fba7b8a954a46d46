"""``breakglass watch CONFIG`` follows the chain and prints findings; ``test-monitor`` tries one block;
``test-contract`` probes one deployed contract as attack-contract simulation would."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors, stderr

if TYPE_CHECKING:
    from breakglass.config import LoadedConfig
    from breakglass.domain import Finding

__all__ = ["test_contract", "test_monitor", "watch"]

ConfigArg = Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")]
ChainOpt = Annotated[
    str | None, typer.Option("--chain", help="the chain to use, when CONFIG lists several (chains:)")
]


def one_chain(config: Path, chain: str | None) -> LoadedConfig:
    """CONFIG loaded, as the configuration of one chain: the file itself, or its ``--chain`` view."""
    from breakglass.config import load_config
    from breakglass.config.refs import closest

    loaded = load_config(config)
    names = loaded.chain_names
    if chain is None and len(names) > 1:
        raise typer.BadParameter(
            f"{config} protects chains {', '.join(names)}: choose one", param_hint="--chain"
        )
    if chain is not None and chain not in names:
        raise typer.BadParameter(
            f"unknown chain {chain!r} {closest(chain, list(names))}", param_hint="--chain"
        )
    return loaded if chain is None else loaded.for_chain(chain)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _line(finding: Finding, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "monitor": finding.monitor_id,
                "severity": str(finding.severity),
                "chain": finding.chain_id,
                "block": finding.block_number,
                "block_hash": finding.block_hash,
                "tx": finding.tx_hash,
                "log_index": finding.log_index,
                "title": finding.title,
                "labels": dict(finding.labels),
                "evidence": dict(finding.evidence),
                "fingerprint": finding.fingerprint,
            },
            default=str,
        )
    where = f"block {finding.block_number}" + (f" tx {finding.tx_hash}" if finding.tx_hash else "")
    return f"[{finding.severity}] {finding.monitor_id}: {finding.title} ({where})"


RESPONSE_SECTIONS = ("playbooks", "responder", "policy", "safes")
"""Sections that only ``serve`` acts on: ``watch`` detects and prints, it never sends a transaction."""


def response_sections(loaded: LoadedConfig) -> list[str]:
    """The response sections ``loaded`` sets, in file order."""
    given = loaded.settings.model_fields_set
    present = [name for name in RESPONSE_SECTIONS if name in given and getattr(loaded.settings, name)]
    return sorted(present, key=lambda name: loaded.line_of((name,)) or 0)


def refuse_response(loaded: LoadedConfig) -> None:
    """A configuration that responds is refused: watching it would print a critical finding and send
    nothing (issue 14). ``--no-respond`` says detection alone is what is wanted."""
    from breakglass.errors import ConfigError

    sections = response_sections(loaded)
    if not sections:
        return
    message = (
        f"this configuration responds ({', '.join(sections)}), and `breakglass watch` only detects: it "
        f"would print a finding and send nothing. Run `breakglass serve {loaded.path}` to detect and "
        f"respond, or `breakglass watch --no-respond {loaded.path}` to accept detection only"
    )
    raise ConfigError([loaded.issue((sections[0],), message)])


async def _watch(loaded: LoadedConfig, start: int | None, until: int | None, as_json: bool) -> None:
    # The pipeline (web3, detectors, store) loads only for the commands that run it.
    from breakglass.app import build_app
    from breakglass.bus import Topics
    from breakglass.detect.service import build_watcher
    from breakglass.store.migrate import upgrade_async

    app = build_app(loaded, respond=False)
    watcher = app.components.watcher
    if watcher is None:
        watcher = app.components.watcher = build_watcher(loaded, app.bus, progress=not as_json)
    watcher.follower.start_block = start
    watcher.follower.progress = not as_json
    await upgrade_async(loaded.settings.store.url)
    gc.collect()  # start-up's objects out of the collector's sight, as in ``serve`` (see there)
    gc.freeze()
    await app.start()
    findings = app.bus.subscribe(Topics.FINDINGS, "cli-watch")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def show() -> None:
        async for finding in findings:
            print(_line(finding, as_json), flush=True)

    printer = asyncio.create_task(show())
    mempool = app.components.mempool  # pending transactions simulated alongside (issue 7)
    simulating = asyncio.create_task(mempool.run(stop)) if mempool is not None else None
    probing = app.components.attack_simulation  # new contracts probed before they act (issue 16)
    probe_task = asyncio.create_task(probing.run(stop)) if probing is not None else None
    try:
        await watcher.run(stop, until=until)
    finally:
        stop.set()
        if simulating is not None:
            await simulating
        if probe_task is not None:
            await probe_task
        await app.close()  # closes the bus: the printer drains what was published, then ends
        with contextlib.suppress(asyncio.CancelledError):
            await printer


@handle_errors
def watch(
    config: ConfigArg,
    start: Annotated[int | None, typer.Option("--from", help="first block when no checkpoint exists")] = None,
    until: Annotated[int | None, typer.Option("--until", help="stop after processing this block")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="findings as JSON lines")] = False,
    no_respond: Annotated[
        bool,
        typer.Option(
            "--no-respond", help="accept a configuration with playbooks/responder/policy, detecting only"
        ),
    ] = False,
    chain: ChainOpt = None,
) -> None:
    """Follow the chain of CONFIG, run its monitors on every block, publish and print findings.

    Detection only: nothing is ever sent. A configuration with response sections (playbooks,
    responder, policy, safes) is refused unless --no-respond is given; `breakglass serve` detects and
    responds."""
    loaded = one_chain(config, chain)
    if not no_respond:
        refuse_response(loaded)
    elif sections := response_sections(loaded):
        stderr().print(
            f"[bold yellow]detection only:[/] --no-respond given, {', '.join(sections)} of {config} "
            "will not act; `breakglass serve` responds",
            markup=True,
        )
    asyncio.run(_watch(loaded, start, until, as_json))


async def _test(loaded: LoadedConfig, block: int, monitors: list[str] | None) -> list[Finding]:
    from breakglass.detect.service import build_watcher

    watcher = build_watcher(loaded, None, only=monitors)
    try:
        return await watcher.test_block(block)
    finally:
        await watcher.close()


@handle_errors
def test_monitor(
    config: ConfigArg,
    block: Annotated[int, typer.Option("--block", help="the historical block to evaluate")],
    monitor: Annotated[
        list[str] | None, typer.Option("--monitor", help="only this monitor id (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="findings as JSON lines")] = False,
    chain: ChainOpt = None,
) -> None:
    """Evaluate CONFIG's monitors against one block (state read at that block). Publishes nothing.

    Windowed monitors (flows, set-up signals) see only this block."""
    findings = asyncio.run(_test(one_chain(config, chain), block, monitor))
    if as_json:
        for finding in findings:
            print(_line(finding, True))
        return
    table = Table(title=f"block {block}: {len(findings)} finding(s)")
    for column in ("severity", "monitor", "title", "tx", "evidence"):
        table.add_column(column)
    for f in findings:
        table.add_row(
            str(f.severity), f.monitor_id, f.title, f.tx_hash or "", json.dumps(dict(f.evidence), default=str)
        )
    _console().print(table)


async def _probe(loaded: LoadedConfig, address: str, callers: list[str]) -> list[Finding]:
    from breakglass.detect.service import build_watcher
    from breakglass.simulate import build_attack_simulation
    from breakglass.simulate.attack import probe_address

    watcher = build_watcher(loaded, None)
    try:
        service = build_attack_simulation(loaded, watcher, None)
        await service.start()
        head = int(await watcher.rpc.call("eth_blockNumber"), 16)
        await watcher.test_block(head)  # the invariants' last values (prev), as a running follower has them
        return await probe_address(service.simulator, address, callers)
    finally:
        await watcher.close()


@handle_errors
def test_contract(
    config: ConfigArg,
    address: Annotated[str, typer.Argument(help="the deployed contract to probe (0x...)")],
    caller: Annotated[
        list[str] | None,
        typer.Option("--caller", help="an account to call it from, e.g. its deployer (repeatable)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="findings as JSON lines")] = False,
    chain: ChainOpt = None,
) -> None:
    """Probe ADDRESS on the latest state with CONFIG's monitors, as attack-contract simulation does
    (its selectors from the callers and a fresh account, guessed arguments, two-call sequences).
    Prints the proof of harm, if any; publishes nothing. Exits 1 when the contract is proven harmful."""
    findings = asyncio.run(_probe(one_chain(config, chain), address, list(caller or [])))
    if as_json:
        for finding in findings:
            print(_line(finding, True))
    elif not findings:
        _console().print(f"{address}: nothing proven (no monitor at attack_simulation.min_severity broke)")
    else:
        table = Table(title=f"{address}: proven harmful by {len(findings)} monitor(s)")
        for column in ("severity", "monitor", "calls", "values before -> after"):
            table.add_column(column)
        for f in findings:
            calls = " then ".join(
                f"{c['selector'] or 'transfer'} from {c['from']}" for c in f.evidence["calls"]
            )
            values = f"{f.evidence.get('before')} -> {f.evidence.get('values')}"
            table.add_row(str(f.severity), f.monitor_id, calls, values)
        _console().print(table)
    if findings:
        raise typer.Exit(1)
