"""``breakglass audit verify|log``: check the hash chain of the timeline, and read the audit log."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.db import DEFAULT_CONFIG, ConfigOpt, UrlOpt, database_url, open_store
from breakglass.cli.errors import handle_errors

if TYPE_CHECKING:
    from breakglass.incidents.timeline import ChainReport, TimelineEntry

__all__ = ["app"]

app = typer.Typer(help="Verify the tamper-evident timeline and read the audit log.")


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
    from breakglass.incidents.clock import SystemClock
    from breakglass.incidents.service import IncidentService
    from breakglass.incidents.timeline import verify_chain

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
    from breakglass.incidents.timeline import TimelineKind, list_events

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
    from breakglass.incidents.timeline import TimelineKind

    table = Table("#", "when", "who", "kind", "what")
    for e in asyncio.run(_log(database_url(config, url), limit, everything)):
        what = f"{e.data.get('action')} {e.data.get('target') or ''}" if e.kind is TimelineKind.AUDIT else ""
        table.add_row(str(e.seq), format_time(e.at), e.actor, e.kind.value, what or str(dict(e.data))[:80])
    _console().print(table)
