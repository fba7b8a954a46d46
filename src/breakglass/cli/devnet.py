"""``breakglass devnet up|down|status``: a local anvil chain with a deployment, between commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.errors import handle_errors

# Typer reads BlockMode from the signature of `up` when the command is registered.
from breakglass.devnet.anvil import BlockMode

app = typer.Typer(help="Run a local anvil devnet with a deployment (manifest in the state folder).")

# The names of breakglass.devnet.deploy.DEPLOYMENT_SETS, for the help text: importing that module loads
# web3, which every other command would then pay for. A test keeps the two equal.
DEPLOYMENT_SET_NAMES = ("toolchain", "venue")


def _console() -> Console:
    return Console()


StateDir = Annotated[Path, typer.Option("--state-dir", help="where devnet.json and manifest.json are kept")]
DEFAULT_STATE = Path(".breakglass/devnet")


@app.command("up")
@handle_errors
def up(
    deployment_set: Annotated[
        str, typer.Option("--set", help=f"deployment set: {', '.join(sorted(DEPLOYMENT_SET_NAMES))}")
    ] = "toolchain",
    mode: Annotated[BlockMode, typer.Option(help="auto: a block per tx; interval; manual")] = BlockMode.AUTO,
    block_time: Annotated[float, typer.Option(help="seconds per block in interval mode")] = 1.0,
    port: Annotated[int, typer.Option(help="0 picks a free port")] = 0,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Start anvil in the background, compile and deploy a contract set, write the manifest."""
    from breakglass.devnet.service import devnet_up

    status, manifest = devnet_up(
        state_dir, deployment_set=deployment_set, mode=mode, block_time=block_time, port=port
    )
    table = Table(title=f"devnet up: {status.url} (chain {manifest.chain_id}, pid {status.pid})")
    table.add_column("contract")
    table.add_column("address")
    for name, record in sorted(manifest.contracts.items()):
        table.add_row(name, record.address)
    _console().print(table)
    _console().print(f"manifest: {status.manifest_path}")


@app.command("status")
@handle_errors
def status(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Show whether the devnet runs, its URL, block height and deployment."""
    from breakglass.devnet.service import devnet_status

    s = devnet_status(state_dir)
    if not s.running:
        _console().print("devnet: not running")
        raise typer.Exit(1)
    _console().print(
        f"devnet: running (pid {s.pid}) at {s.url}, mode {s.mode}, block {s.block_number}, "
        f"{s.contracts} contracts in {s.manifest_path}"
    )


@app.command("down")
@handle_errors
def down(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Stop the devnet started by `devnet up`."""
    from breakglass.devnet.service import devnet_down

    _console().print("devnet: stopped" if devnet_down(state_dir) else "devnet: was not running")
