"""``breakglass audit verify|log``: check the hash chain of the timeline, and read the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.db import DEFAULT_CONFIG, ConfigOpt, UrlOpt, database_url, open_store
from breakglass.cli.errors import handle_errors

if TYPE_CHECKING:
    from breakglass.timeline import ChainReport, TimelineEntry

__all__ = ["app"]

app = typer.Typer(help="Verify the tamper-evident timeline, read the audit log, audit pause coverage.")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


COVERAGE = (
    "covered: every timeline event (findings grouped into incidents and their retractions, every "
    "action step the responder published, incident state changes, notes, tasks, notifications, API and "
    "CLI audit events); each incident's state is checked against its last recorded state change.\n"
    "not covered: the rows of respond_ledger and respond_claims (the responder's own record, which the "
    "timeline mirrors), alerts (status, counts), an incident's other columns (severity, times), "
    "detector state and checkpoints: an edit there does not break the chain; compare them with the "
    "timeline."
)


async def _verify(url: str) -> tuple[ChainReport, list[str]]:
    from breakglass.clock import SystemClock
    from breakglass.incidents.service import IncidentService
    from breakglass.timeline import verify_chain

    async with open_store(url) as sessions, sessions() as session:
        return await verify_chain(session), await IncidentService(SystemClock()).state_mismatches(session)


@app.command("verify")
@handle_errors
def verify(config: ConfigOpt = DEFAULT_CONFIG, url: UrlOpt = None) -> None:
    """Recompute every timeline row's hash; name the first row that does not verify (exit 1). Check
    each incident's state against its timeline. Says what the chain does not cover."""
    report, mismatches = asyncio.run(_verify(database_url(config, url)))
    console = _console()
    for mismatch in mismatches:
        console.print(f"[bold red]TAMPERED[/]: {mismatch}", markup=True)
    if report.ok and not mismatches:
        console.print(f"ok: {report.checked} events verify; head {report.head_hash}")
        console.print(COVERAGE)
        return
    if report.ok:
        console.print(COVERAGE)
        raise typer.Exit(1)
    _console().print(
        f"[bold red]TAMPERED[/]: row {report.bad_seq}: {report.reason} "
        f"({report.checked} rows before it verify; last good hash {report.head_hash})",
        markup=True,
    )
    raise typer.Exit(1)


async def _log(url: str, limit: int, everything: bool) -> list[TimelineEntry]:
    from breakglass.timeline import TimelineKind, list_events

    kinds = None if everything else {TimelineKind.AUDIT}
    async with open_store(url) as sessions, sessions() as session:
        events = await list_events(session, kinds=kinds, limit=1_000_000)
    return events[-limit:]


@app.command("log")
@handle_errors
def log(
    limit: Annotated[int, typer.Option(help="the newest N events")] = 50,
    everything: Annotated[bool, typer.Option("--all", help="every timeline event, not only audit")] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """The newest audit events: who did what to which target."""
    from breakglass.incidents.metrics import format_time
    from breakglass.timeline import TimelineKind

    table = Table("#", "when", "who", "kind", "what")
    for e in asyncio.run(_log(database_url(config, url), limit, everything)):
        what = f"{e.data.get('action')} {e.data.get('target') or ''}" if e.kind is TimelineKind.AUDIT else ""
        table.add_row(str(e.seq), format_time(e.at), e.actor, e.kind.value, what or str(dict(e.data))[:80])
    _console().print(table)


@app.command("coverage")
@handle_errors
def coverage(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration (with playbooks)")],
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON here")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="write the report as HTML here")] = None,
    rpc: Annotated[
        str | None, typer.Option(help="the node to fork (default: chain.rpc, else the manifest's)")
    ] = None,
    no_fork: Annotated[
        bool, typer.Option("--no-fork", help="audit on --rpc itself, a devnet (its state is restored after)")
    ] = False,
    fork_block: Annotated[int | None, typer.Option(help="fork at this block (default: the head)")] = None,
    guardian: Annotated[
        str | None, typer.Option(help="the guardian's address (default: the responder's signer)")
    ] = None,
    contract: Annotated[
        list[str] | None, typer.Option(help="a contract whose functions are tried (repeat; default: all)")
    ] = None,
    token: Annotated[
        list[str] | None, typer.Option(help="a token value is measured in (default: every ERC-20 + ETH)")
    ] = None,
    holder: Annotated[
        list[str] | None, typer.Option(help="a protocol holder of value (default: the tried contracts)")
    ] = None,
    minted: Annotated[
        list[str] | None,
        typer.Option(help="a token the protocol mints to pay (a synth): new supply counts as value out"),
    ] = None,
    evidence: Annotated[
        list[str] | None,
        typer.Option(help="PATH=VALUE: an example of the finding's evidence for {evidence.PATH} arguments"),
    ] = None,
    sender: Annotated[
        list[str] | None,
        typer.Option(
            help="an account generated calls are sent from (repeat): a known user, a whale on a fork"
        ),
    ] = None,
    blocks: Annotated[int, typer.Option(help="newest blocks whose calls are replayed")] = 256,
    budget: Annotated[
        int, typer.Option(help="generated calls at most per function (after the replayed ones)")
    ] = 12,
    strict: Annotated[bool, typer.Option(help="exit 1 when a value path is left open")] = False,
) -> None:
    """Apply each containment of the playbooks on a fork and try the users' calls: which still succeed,
    which still move value out (docs/coverage.md)."""
    from breakglass.config import load_config
    from breakglass.coverage.audit import AuditOptions
    from breakglass.coverage.service import audit_config

    examples = {}
    for item in evidence or ():
        path, sep, value = item.partition("=")
        if not sep or not path:
            raise typer.BadParameter(f"--evidence {item!r}: write PATH=VALUE, e.g. args.marketId=0")
        examples[path.removeprefix("evidence.")] = value
    loaded = load_config(config)
    report = audit_config(
        loaded,
        rpc=rpc,
        fork=not no_fork,
        fork_block=fork_block,
        guardian=guardian,
        contracts=contract or (),
        tokens=token or (),
        holders=holder or (),
        minted=minted or (),
        evidence=examples,
        options=AuditOptions(history_blocks=blocks, budget=budget, senders=tuple(sender or ())),
    )
    if json_out is not None:
        json_out.write_text(report.dumps(), encoding="utf-8")
    if html_out is not None:
        html_out.write_text(report.html(), encoding="utf-8")
    _console().print(report.text(), markup=False)
    if strict and report.flagged:
        raise typer.Exit(1)
