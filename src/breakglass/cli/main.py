"""The root ``breakglass`` command: global options, and the sub-commands wired in one visible place."""

from __future__ import annotations

from typing import Annotated

import typer

from breakglass import __version__
from breakglass.cli import (
    audit,
    check,
    db,
    demo,
    devnet,
    doctor,
    drill,
    incidents,
    init,
    intel,
    playbook,
    report,
    safe,
    serve,
    tokens,
    watch,
)
from breakglass.logs import configure_logging

app = typer.Typer(
    name="breakglass",
    help="Security incident management for DeFi derivatives venues: detect, contain, respond, drill.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    log_json: Annotated[bool, typer.Option("--log-json", help="JSON log lines instead of console")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning, error")] = "info",
) -> None:
    configure_logging(json=log_json, level=log_level)


@app.command()
def version() -> None:
    """Print the breakglass version."""
    typer.echo(__version__)


app.command("check")(check.check)
app.command("init")(init.init)
app.command("watch")(watch.watch)
app.command("test-monitor")(watch.test_monitor)
app.command("test-contract")(watch.test_contract)
app.add_typer(devnet.app, name="devnet")
app.command("serve")(serve.serve)
app.command("doctor")(doctor.doctor)
app.add_typer(tokens.app, name="tokens")
app.add_typer(drill.app, name="drill")
app.add_typer(playbook.app, name="playbook")
app.add_typer(safe.app, name="safe")
app.add_typer(db.app, name="db")
app.add_typer(audit.app, name="audit")
app.add_typer(incidents.app, name="incidents")
app.add_typer(intel.app, name="intel")
app.command("report")(report.report)
app.command("demo")(demo.demo)


def main() -> None:
    app()
