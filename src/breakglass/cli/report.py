"""``breakglass report INCIDENT``: the post-mortem as Markdown and HTML, with a value-at-risk plot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from breakglass.cli.db import DEFAULT_CONFIG, ConfigOpt, UrlOpt, database_url, open_store
from breakglass.cli.errors import handle_errors
from breakglass.errors import BreakglassError

if TYPE_CHECKING:
    from breakglass.incidents.report import ReportFiles, Series

__all__ = ["report"]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def read_series(path: Path) -> Series:
    """A JSON list of ``[block, value]`` pairs (or ``{"block": .., "value": ..}`` objects)."""
    try:
        raw = json.loads(path.read_text("utf-8"))
        return sorted(
            (int(p["block"]), float(p["value"])) if isinstance(p, dict) else (int(p[0]), float(p[1]))
            for p in raw
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise BreakglassError(f"{path}: not a list of (block, value) pairs ({exc})") from exc


@handle_errors
def report(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the files")] = Path("reports"),
    series: Annotated[
        Path | None, typer.Option(help="JSON [[block, value], ...] of value at risk; default: evidence")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Write INCIDENT's post-mortem: timeline, evidence, metrics and a value-at-risk plot."""
    # The report stack (matplotlib among it) loads only for this command.
    from breakglass.clock import SystemClock
    from breakglass.incidents.report import gather, write_report
    from breakglass.incidents.service import IncidentService

    points = read_series(series) if series is not None else None

    async def run() -> ReportFiles:
        async with open_store(database_url(config, url)) as sessions, sessions() as session:
            data = await gather(session, IncidentService(SystemClock()), incident_id, points)
        return await asyncio.to_thread(write_report, data, out)

    files = asyncio.run(run())
    _console().print(
        f"wrote {files.markdown} and {files.html}" + (f" (plot {files.plot})" if files.plot else "")
    )
