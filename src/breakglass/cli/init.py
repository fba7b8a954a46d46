"""``breakglass init DEPLOYMENT``: scaffold a configuration that ``breakglass check`` accepts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def init(
    deployment: Annotated[
        Path, typer.Argument(help="deployment manifest (JSON: contracts by name, address, ABI)")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="configuration file to write")] = Path(
        "breakglass.yaml"
    ),
    protocol: Annotated[
        str | None, typer.Option(help="the protocol's name (default: the manifest's)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite OUT if it exists")] = False,
) -> None:
    """Read the ABIs of DEPLOYMENT, find its pause/freeze/suspend functions, roles, owners, upgrade and
    parameter events and tokens, and write a commented starter configuration to OUT: governance, undo and
    outflow monitors, a least-power policy and a playbook calling the broadest emergency function."""
    from breakglass.devnet.manifest import Manifest
    from breakglass.errors import ConfigError
    from breakglass.scaffold import InitOptions, discover, render

    stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    if out.exists() and not force:
        stderr.print(f"[red]error[/] {out} exists (use --force to overwrite)", markup=True)
        raise typer.Exit(2)
    try:
        manifest = Manifest.read(deployment)
    except ConfigError as exc:
        for issue in exc.issues:
            stderr.print(f"[red]error[/] {issue}", markup=True)
        raise typer.Exit(2) from exc
    surface = discover({name: rec.abi for name, rec in manifest.contracts.items()})
    name = protocol or str(manifest.meta.get("protocol") or deployment.stem)
    relative = os.path.relpath(deployment.resolve(), out.resolve().parent)
    if relative.startswith(os.pardir + os.sep + os.pardir):  # far away: the absolute path reads better
        relative = str(deployment.resolve())
    text = render(surface, InitOptions(deployment=relative, protocol=name, source=str(deployment)))
    out.write_text(text, encoding="utf-8")
    found = surface.tightening
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out}: {len(manifest.contracts)} contracts, {len(found)} emergency function(s)"
        + (f" ({', '.join(sorted({f.contract + '.' + f.name for f in found}))})" if found else "")
        + f", {len(surface.tokens)} token(s). Next: breakglass check {out}"
    )
