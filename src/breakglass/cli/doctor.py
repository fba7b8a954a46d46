"""``breakglass doctor CONFIG``: check a live deployment (``breakglass.doctor``) and say what is wrong."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors

__all__ = ["doctor"]


@handle_errors
def doctor(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")],
) -> None:
    """Check a live deployment: RPC endpoints on the right chain, contracts with code, the guardian's
    signer, funds and roles (every playbook call simulated from it), the store migrated and writable,
    notification channels reachable. Exit 1 when anything fails."""
    from breakglass.config import load_config
    from breakglass.doctor import failed, run_doctor

    loaded = load_config(config)
    checks = asyncio.run(run_doctor(loaded))
    table = Table(title=f"breakglass doctor: {config}")
    for column in ("", "area", "what", "finding"):
        table.add_column(column)
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[red]FAIL[/]"
        table.add_row(mark, check.area, check.subject, check.detail)
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    bad = failed(checks)
    if bad:
        console.print(f"[red]{len(bad)} of {len(checks)} checks failed[/]")
        raise typer.Exit(1)
    console.print(f"all {len(checks)} checks passed")
