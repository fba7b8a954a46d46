"""``breakglass demo``: a live exploit on a local devnet, breakglass detecting and containing it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from breakglass.cli.errors import handle_errors
from breakglass.logs import configure_logging

__all__ = ["demo"]


@handle_errors
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="where the store, scorecard and report go")] = Path(
        ".breakglass/demo"
    ),
    scenario: Annotated[
        str, typer.Option(help="the exploit to play (breakglass drill list)")
    ] = "forwarder-oracle",
    verbose: Annotated[bool, typer.Option("--verbose", help="keep the pipeline's info logs")] = False,
) -> None:
    """Start anvil, deploy the venue with a bug, play an exploit live with breakglass defending."""
    from breakglass.drills.demo import run_demo
    from breakglass.drills.scenarios.devnet import resolve

    resolve(scenario)  # an unknown name is a clear error before anything starts
    if not verbose:
        configure_logging(level="warning")
    asyncio.run(run_demo(Console(highlight=False), folder, scenario))
