"""``breakglass incidents list|show|ack|transition|note``: incidents from the terminal.

Each mutating command is one transaction through ``IncidentService``; the timeline names the person
running it (``cli:<user>``, or ``--as``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from breakglass.cli.db import DEFAULT_CONFIG, ConfigOpt, UrlOpt, cli_actor, database_url, open_store
from breakglass.cli.errors import handle_errors
from breakglass.clock import SystemClock
from breakglass.domain import Severity

# Typer reads these enums from the command signatures when the commands are registered.
from breakglass.incidents.states import IncidentState, Resolution

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from breakglass.incidents.models import Incident
    from breakglass.incidents.service import IncidentService

__all__ = ["app"]

app = typer.Typer(help="List, inspect, acknowledge and move incidents; add notes.")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


AsOpt = Annotated[str | None, typer.Option("--as", help="who is acting (default: cli:<user>)")]
STATES = ", ".join(s.value for s in IncidentState)


def _service() -> IncidentService:
    from breakglass.incidents.service import IncidentService

    return IncidentService(SystemClock())


def _row(table: Table, i: Incident) -> None:
    from breakglass.incidents.metrics import format_time

    table.add_row(
        i.id, str(Severity(i.severity)), i.state, i.title, str(i.alert_count), format_time(i.created_at)
    )


@app.command("list")
@handle_errors
def list_(
    state: Annotated[list[IncidentState] | None, typer.Option(help=f"only these states: {STATES}")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="every state but closed")] = False,
    limit: Annotated[int, typer.Option(help="at most N, newest first")] = 50,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Incidents, newest first."""
    states = set(state or ())
    if open_only:
        states |= {s for s in IncidentState if s is not IncidentState.CLOSED}

    async def run() -> list[Incident]:
        async with open_store(database_url(config, url)) as sessions, sessions() as session:
            return await _service().find(session, states=states or None, limit=limit)

    table = Table("severity", "state", "title", "alerts", "opened")
    table.columns.insert(0, Column("id", no_wrap=True))
    for incident in asyncio.run(run()):
        _row(table, incident)
    _console().print(table)


@app.command("show")
@handle_errors
def show(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """One incident: state, metrics, people, tasks and its timeline."""
    # incidents.report brings matplotlib along: loaded for this command only.
    from breakglass.incidents.metrics import format_duration, format_time, incident_metrics
    from breakglass.incidents.report import summarize

    service = _service()

    async def run() -> None:
        async with open_store(database_url(config, url)) as sessions, sessions() as session:
            i = await service.get(session, incident_id)
            m = incident_metrics(i)
            _console().print(f"[bold]{i.id}[/] {i.title}", markup=True)
            _console().print(f"severity {Severity(i.severity)} · state {i.state}"
                          + (f" · resolution {i.resolution}" if i.resolution else "")
                          + f" · {i.alert_count} alert(s) · protocol {i.protocol}")  # fmt: skip
            _console().print(f"detected {format_time(i.detected_at)} (block {i.detected_block}) · "
                          f"TTD {format_duration(m.ttd_ms)} · TTC {format_duration(m.ttc_ms)}"
                          f" · TTR {format_duration(m.ttr_ms)}")  # fmt: skip
            for p in await service.participants(session, incident_id):
                _console().print(f"  {p.role}: {p.name}")
            for t in await service.tasks(session, incident_id):
                due = f", due {format_time(t.due_at)}" if t.due_at else ""
                _console().print(f"  task #{t.id} [{t.status}] {t.title} ({t.kind}{due})", markup=False)
            table = Table("#", "when", "kind", "who", "what")
            for e in await service.timeline(session, incident_id):
                table.add_row(str(e.seq), format_time(e.at), e.kind.value, e.actor, summarize(e))
            _console().print(table)

    asyncio.run(run())


@app.command("ack")
@handle_errors
def ack(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    actor: AsOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Acknowledge: you become commander (if there is none) and the incident is triaged."""
    who = actor or cli_actor()

    from breakglass.store.outbox import in_transaction

    async def run() -> Incident:
        async with open_store(database_url(config, url)) as sessions:
            return await in_transaction(
                sessions, None, lambda session: _service().acknowledge(session, incident_id, actor=who)
            )

    incident = asyncio.run(run())
    _console().print(f"{incident.id}: acknowledged by {incident.acknowledged_by}; {incident.state}")


@app.command("transition")
@handle_errors
def transition(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    state: Annotated[IncidentState, typer.Argument(help=f"the next state: {STATES}")],
    resolution: Annotated[Resolution | None, typer.Option(help="required to close")] = None,
    reason: Annotated[str | None, typer.Option(help="why, for the timeline")] = None,
    duplicate_of: Annotated[str | None, typer.Option(help="the original, for a duplicate")] = None,
    actor: AsOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Move an incident along its lifecycle (forward only; closing needs --resolution)."""
    who = actor or cli_actor()

    from breakglass.store.outbox import in_transaction

    async def move(session: AsyncSession) -> Incident:
        return await _service().transition(
            session, incident_id, state, actor=who, resolution=resolution, reason=reason,
            duplicate_of=duplicate_of,
        )  # fmt: skip

    async def run() -> Incident:
        async with open_store(database_url(config, url)) as sessions:
            return await in_transaction(sessions, None, move)  # reruns a move that lost a race

    incident = asyncio.run(run())
    _console().print(
        f"{incident.id}: {incident.state}" + (f" ({incident.resolution})" if incident.resolution else "")
    )


@app.command("note")
@handle_errors
def note(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    text: Annotated[str, typer.Argument(help="the note")],
    actor: AsOpt = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Add a note to the incident's timeline."""
    who = actor or cli_actor()

    from breakglass.store.outbox import in_transaction

    async def add(session: AsyncSession) -> int:
        await _service().hold_open(session, incident_id)  # a closed incident takes no notes
        entry = await _service().add_note(session, incident_id, actor=who, text=text)
        return entry.seq

    async def run() -> int:
        async with open_store(database_url(config, url)) as sessions:
            return await in_transaction(sessions, None, add)

    _console().print(f"{incident_id}: note #{asyncio.run(run())} added")
