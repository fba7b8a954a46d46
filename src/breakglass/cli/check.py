"""``breakglass check CONFIG``: build the configuration offline and print every problem with its location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def check(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")],
) -> None:
    """Validate CONFIG offline (no chain): keys, types, references, monitors against the ABIs
    (events, view functions, arguments, parameter_events, expression fields and types), playbooks
    against the ABIs and the policy. Every error with file:line. Exit 2 on errors."""
    from breakglass.check import check_config

    stderr, console = _stderr(), _stdout()
    report = check_config(config)
    for issue in report.errors:
        stderr.print(f"[red]error[/] {issue}", markup=True)
    if report.errors:
        stderr.print(f"{len(report.errors)} error(s) in {config}")
        raise typer.Exit(2)
    for warning in report.warnings:
        console.print(f"[yellow]warning[/] {warning}", markup=True)
    loaded = report.config
    assert loaded is not None
    s = loaded.settings
    console.print(
        f"{config}: ok — protocol {s.protocol}, {len(loaded.contracts)} contracts, "
        f"{len(s.monitors)} monitors, {len(s.playbooks)} playbooks"
    )
