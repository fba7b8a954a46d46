"""``breakglass safe``: list pending Safe proposals, review and sign one, execute at threshold.

``sign`` prints exactly what is signed (the Safe, chain, nonce, the decoded call, the EIP-712 Safe
transaction hash) and asks before signing with the signer's own key (keystore or variable); the key is
registered with the log redactor and never printed.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from breakglass.cli.errors import handle_errors
from breakglass.errors import ResponseError

if TYPE_CHECKING:
    from breakglass.config import LoadedConfig
    from breakglass.respond import Responder

__all__ = ["app"]

app = typer.Typer(help="Safe multisig proposals: review, sign, execute.", no_args_is_help=True)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


ConfigArg = Annotated[Path, typer.Argument(help="the breakglass YAML configuration file")]
T = TypeVar("T")


def _with_responder(config: Path, work: Callable[[Responder, LoadedConfig], Awaitable[T]]) -> T:
    # The responder stack (web3, safe-eth-py, SQLAlchemy) loads only for the safe commands.
    from breakglass.bus import InProcessBus
    from breakglass.config import load_config
    from breakglass.logs import Redactor
    from breakglass.respond import build_responder
    from breakglass.store.migrate import upgrade_async

    async def run() -> T:
        loaded = load_config(config)
        await upgrade_async(loaded.settings.store.url)
        responder = build_responder(loaded, InProcessBus(), Redactor(loaded.secrets))
        try:
            if responder.safes is None:
                raise ResponseError("no chain RPC configured: the Safe service needs one")
            return await work(responder, loaded)
        finally:
            await responder.close()

    return asyncio.run(run())


def _show(shown: dict[str, Any]) -> None:
    _console().print(
        f"[bold]Safe[/] {shown['safe']} {shown['safe_address']} on chain {shown['chain_id']}, "
        f"Safe nonce {shown['safe_nonce']}"
    )
    _console().print(f"[bold]call[/] {shown['call']}  ({shown['function']} at {shown['to']}), value 0, CALL")
    _console().print(f"[bold]data[/] {shown['data']}")
    _console().print(f"[bold]Safe tx hash (EIP-712)[/] {shown['safe_tx_hash']}")
    _console().print(
        f"signed by {len(shown['signed_by'])} of {shown['threshold']} needed: "
        f"{', '.join(shown['signed_by']) or 'nobody yet'}"
    )


@app.command("pending")
@handle_errors
def pending(config: ConfigArg) -> None:
    """List Safe proposals not yet executed."""

    async def work(responder: Responder, _: LoadedConfig) -> None:
        assert responder.safes is not None
        for row in await responder.safes.pending():
            _console().print(f"{row.safe_tx_hash}  {row.safe} nonce {row.safe_nonce}  {row.target}")

    _with_responder(config, work)


@app.command("sign")
@handle_errors
def sign(
    config: ConfigArg,
    safe_tx_hash: Annotated[str, typer.Argument(help="the Safe transaction hash to sign")],
    keystore: Annotated[Path | None, typer.Option(help="the signer's eth-account keystore")] = None,
    password_env: Annotated[
        str, typer.Option(help="variable holding the keystore password")
    ] = "SAFE_SIGNER_PASSWORD",  # noqa: S107 -- the name of a variable, not a password
    key_env: Annotated[str | None, typer.Option(help="variable holding the signer's hex key instead")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="sign without asking (after printing)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the description as JSON")] = False,
) -> None:
    """Show exactly what SAFE_TX_HASH is, then sign it with your key and store the signature."""
    from breakglass.config.playbooks import GuardianKeyConfig
    from breakglass.logs import Redactor
    from breakglass.respond.signer import load_local_key

    if (keystore is None) == (key_env is None):
        raise ResponseError("give exactly one of --keystore or --key-env")
    source = (
        GuardianKeyConfig(env=key_env)
        if key_env
        else GuardianKeyConfig.model_validate(
            {"keystore": str(keystore), "password": os.environ.get(password_env, "")}
        )
    )

    async def work(responder: Responder, loaded: LoadedConfig) -> None:
        assert responder.safes is not None
        shown = await responder.safes.describe(safe_tx_hash)
        if as_json:
            _console().print_json(json.dumps(shown, default=str))
        else:
            _show(shown)
        if not yes and not typer.confirm("Sign this Safe transaction?", default=False):
            raise typer.Exit(1)
        signer = load_local_key(source, Path.cwd(), Redactor())
        owner = await responder.safes.add_signature(
            shown["safe_tx_hash"], signer.sign_hash(bytes.fromhex(shown["safe_tx_hash"][2:]))
        )
        _console().print(f"signed by {owner}")

    _with_responder(config, work)


@app.command("execute")
@handle_errors
def execute(
    config: ConfigArg, safe_tx_hash: Annotated[str, typer.Argument(help="the Safe transaction hash")]
) -> None:
    """Submit SAFE_TX_HASH through the guardian relayer if enough owners signed."""

    async def work(responder: Responder, _: LoadedConfig) -> None:
        assert responder.safes is not None
        await responder.start()
        event = await responder.safes.execute_if_ready(safe_tx_hash)
        if event is None:
            _console().print("not executed: below the threshold, or already executed")
            raise typer.Exit(1)
        done = await responder.relayer.wait(event.key)  # type: ignore[union-attr]
        _console().print(f"{done.step}: {done.tx_hash}")

    _with_responder(config, work)
