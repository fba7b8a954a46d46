"""``breakglass intel export|verify|pull``: signed threat intelligence shared with other protocols."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from breakglass.cli.db import DEFAULT_CONFIG, ConfigOpt, UrlOpt, database_url, open_store
from breakglass.cli.errors import handle_errors
from breakglass.errors import IntelError

if TYPE_CHECKING:
    from breakglass.intel.feed import SourceReport

__all__ = ["app"]

app = typer.Typer(help="Share an incident's indicators as a signed STIX 2.1 bundle; verify and pull peers'.")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IntelError(f"{path}: not a JSON bundle ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise IntelError(f"{path}: not a JSON object")
    return data


@app.command("export")
@handle_errors
def export(
    incident_id: Annotated[str, typer.Argument(metavar="INCIDENT")],
    out: Annotated[Path, typer.Option("--out", "-o", help="where to write the signed bundle")] = Path(
        "bundle.json"
    ),
    chain: Annotated[
        bool, typer.Option(help="complete the indicators from the node (senders, contracts, code hashes)")
    ] = True,
    config: ConfigOpt = DEFAULT_CONFIG,
    url: UrlOpt = None,
) -> None:
    """Write INCIDENT's indicators as a STIX 2.1 bundle signed with intel.signer."""
    from breakglass.chain.rpc import RpcClient
    from breakglass.clock import SystemClock
    from breakglass.config import load_config
    from breakglass.incidents.service import IncidentService
    from breakglass.intel.export import export_incident, load_intel_signer
    from breakglass.logs import active_redactor

    loaded = load_config(config)
    signer = load_intel_signer(loaded, active_redactor())
    urls = loaded.rpc_urls() if chain else []

    async def run() -> dict[str, Any]:
        rpc = RpcClient.from_urls(urls, timeout=loaded.settings.chain.request_timeout) if urls else None
        try:
            async with open_store(database_url(config, url)) as sessions, sessions() as session:
                return await export_incident(
                    session, IncidentService(SystemClock()), incident_id, loaded, signer,
                    now_ms=int(time.time() * 1000), chain=rpc,
                )  # fmt: skip
        finally:
            if rpc is not None:
                await rpc.close()

    bundle = asyncio.run(run())
    from breakglass.intel.export import write_bundle

    write_bundle(out, bundle)
    indicators = sum(1 for o in bundle["objects"] if o["type"] == "indicator")
    _console().print(f"wrote {out}: {indicators} indicator(s) of {incident_id}, signed by {signer.address}")


@app.command("verify")
@handle_errors
def verify(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="also say which configured sources trust the signer")
    ] = None,
) -> None:
    """Check BUNDLE's signature offline and list its indicators; exit 1 when it is not valid."""
    from breakglass.intel.bundle import parse_indicators
    from breakglass.intel.signing import verify_bundle

    bundle = _read_bundle(bundle_file)
    signer = verify_bundle(bundle)
    indicators = parse_indicators(bundle)
    table = Table("kind", "value", "confidence", "valid from", "incident")
    for i in indicators:
        table.add_row(i.kind, i.value, str(i.confidence), time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(
            i.valid_from_ms / 1000)), i.incident or "")  # fmt: skip
    console = _console()
    console.print(f"{bundle_file}: signature valid, signed by {signer}; {len(indicators)} indicator(s)")
    console.print(table)
    if config is not None:
        from breakglass.config import load_config

        sources = load_config(config).settings.intel.sources
        trusting = [s.name for s in sources if signer.lower() in {a.lower() for a in s.signers}]
        console.print(
            f"trusted by source(s): {', '.join(trusting)}"
            if trusting
            else "no configured source trusts this signer"
        )


@app.command("publish")
@handle_errors
def publish(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE")],
    collection: Annotated[
        str,
        typer.Option(
            envvar="BREAKGLASS_TAXII_COLLECTION",
            help="the TAXII 2.1 collection URL: https://host/api-root/collections/<id>/",
        ),
    ],
    user: Annotated[str | None, typer.Option(help="HTTP basic user")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="name of the variable holding the password")
    ] = None,
) -> None:
    """Add a signed BUNDLE's objects, and its signature as an object, to a TAXII 2.1 collection."""
    import os

    from breakglass.intel.signing import verify_bundle
    from breakglass.intel.taxii import publish_bundle

    bundle = _read_bundle(bundle_file)
    signer = verify_bundle(bundle)  # never publish what a peer would refuse
    password = os.environ.get(password_env) if password_env else None
    if password_env and password is None:
        raise IntelError(f"--password-env: variable {password_env} is not set")
    stored = publish_bundle(bundle, collection, user=user, password=password)
    _console().print(f"published {bundle_file} (signed by {signer}): {stored} object(s) stored")


@app.command("pull")
@handle_errors
def pull(
    source: Annotated[list[str] | None, typer.Option(help="only these sources (default: all)")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Verify the bundles of every intel source and import what their trusted signers give."""
    from breakglass.config import load_config
    from breakglass.detect.build import intel_store_of
    from breakglass.intel.feed import pull_sources

    loaded = load_config(config)
    sources = [s for s in loaded.settings.intel.sources if source is None or s.name in source]
    if source is not None and len(sources) != len(set(source)):
        known = ", ".join(s.name for s in loaded.settings.intel.sources) or "none"
        raise IntelError(
            f"no intel source named {sorted(set(source) - {s.name for s in sources})} (known: {known})"
        )
    reports = pull_sources(
        sources, loaded.path.parent, intel_store_of(loaded), now_ms=int(time.time() * 1000)
    )
    _print(reports, intel_store_of(loaded))
    if any(r.refused for r in reports):
        raise typer.Exit(1)


def _print(reports: list[SourceReport], store: Path) -> None:
    console = _console()
    table = Table("source", "bundles accepted", "indicators", "refused")
    for r in reports:
        refused = ", ".join(f"{n} {reason}" for reason, n in sorted(r.refused.items())) or "0"
        table.add_row(r.source, str(r.accepted), str(r.indicators), refused)
    console.print(table)
    for r in reports:
        for problem in r.problems:
            console.print(f"  {r.source}: {problem}", markup=False)
    console.print(f"indicators kept in {store}")
