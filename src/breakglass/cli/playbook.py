"""``breakglass playbook test CONFIG --finding FILE``: the exact calls a playbook would send, simulated.

Nothing is signed or sent and the real ledger is not touched (the dry run keeps its ledger in memory).
Each call gets the policy's verdict, with its bounds read on chain (``guardian.maxLeverage(1) = 50``).
Simulation runs from the guardian's address: the configured key's, or ``--from`` when the key is not
available on this machine.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from breakglass.cli.errors import handle_errors
from breakglass.domain import Finding, FindingStage, Severity
from breakglass.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from breakglass.respond.signer import Signer

__all__ = ["app", "read_finding"]

app = typer.Typer(help="Playbooks: dry runs against a finding.", no_args_is_help=True)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def read_finding(path: Path) -> Finding:
    """A finding from a JSON file: ``monitor_id``, ``severity``, ``labels``, ``evidence``, ``tx_hash``..."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read the finding: {exc}")]) from exc
    try:
        return Finding(
            monitor_id=str(data["monitor_id"]),
            severity=Severity.parse(str(data.get("severity", "critical"))),
            chain_id=int(data.get("chain_id", 31337)),
            block_number=int(data.get("block_number", 0)),
            title=str(data.get("title", "dry run")),
            stage=FindingStage(data.get("stage", "block")),
            tx_hash=data.get("tx_hash"),
            labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
            evidence=dict(data.get("evidence", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"not a finding: {exc!r}")]) from exc


async def _dry_run(config: Path, finding: Finding, sender: str | None) -> list[dict[str, Any]]:
    # The responder stack (web3, Safe, SQLAlchemy) loads only when a dry run is asked for.
    from breakglass.bus import InProcessBus
    from breakglass.config import load_config
    from breakglass.logs import Redactor
    from breakglass.respond import build_responder, create_tables
    from breakglass.respond.signer import AddressOnlySigner
    from breakglass.store.db import make_engine, make_sessionmaker

    loaded = load_config(config)
    engine = make_engine("sqlite:///:memory:")
    await create_tables(engine)
    signer: Signer | None = AddressOnlySigner(sender) if sender else None
    # vet=False: a call the policy always refuses is shown as refused, step by step, instead of
    # stopping the dry run (``breakglass check`` and start-up refuse such a configuration)
    responder = build_responder(
        loaded,
        InProcessBus(),
        Redactor(loaded.secrets),
        sessions=make_sessionmaker(engine),
        signer=signer,
        vet=False,
    )
    try:
        if responder.relayer is not None:
            await responder.relayer.prepare()
        return await responder.dry_run(finding)
    finally:
        await responder.close()
        await engine.dispose()


@app.command("test")
@handle_errors
def test(
    config: Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")],
    finding: Annotated[Path, typer.Option("--finding", help="a finding as JSON")],
    sender: Annotated[
        str | None, typer.Option("--from", help="simulate from this address (no key needed)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Show what the playbooks matching FINDING would send, simulated on the chain; nothing is sent."""
    steps = asyncio.run(_dry_run(config, read_finding(finding), sender))
    if as_json:
        _console().print_json(json.dumps(steps, default=str))
        return
    if not steps:
        _console().print("no playbook matches this finding")
        return
    _console().print("dry run: each call simulated alone on the latest block; nothing is signed or sent")
    for i, step in enumerate(steps, 1):
        head = step.get("call") or step.get("text") or step.get("error")
        _console().print(f"[bold]{i}. {step['playbook']}.{step['action']}[/]: {head}")
        for name in ("via", "policy", "simulation", "key", "to", "data", "error"):
            if name in step and step[name] != head:
                _console().print(f"   {name}: {step[name]}")
        plan = step.get("plan")
        if plan:
            _console().print(
                f"   from {plan['from']} nonce {plan['nonce']} gas {plan['gas']} "
                f"(estimate {plan['gas_estimate']}) max fee {plan['max_fee_per_gas']} "
                f"tip {plan['max_priority_fee_per_gas']} chain {plan['chain_id']}"
            )
