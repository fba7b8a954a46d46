"""``breakglass check CONFIG``: validate a configuration and print every problem with its location."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from breakglass.errors import ConfigError


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def check(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")],
) -> None:
    """Validate CONFIG: keys, types, references to contracts and monitors. Exit 2 on errors."""
    from breakglass.config import load_config

    stderr, console = _stderr(), _stdout()
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        for issue in exc.issues:
            stderr.print(f"[red]error[/] {issue}", markup=True)
        stderr.print(f"{len(exc.issues)} error(s) in {config}")
        raise typer.Exit(2) from exc
    for warning in loaded.warnings:
        console.print(f"[yellow]warning[/] {warning}", markup=True)
    s = loaded.settings
    console.print(
        f"{config}: ok — protocol {s.protocol}, {len(loaded.contracts)} contracts, {len(s.monitors)} monitors"
    )
