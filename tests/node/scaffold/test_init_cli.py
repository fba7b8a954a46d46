"""``breakglass init`` on both example protocols, then ``breakglass check`` on what it wrote: the reference
venue deployed on anvil, and Synthetix's own OP Sepolia deployment (addresses and ABIs from the authors'
npm package, offline)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml
from typer.testing import CliRunner
from web3 import Web3

from breakglass.cli.main import app
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build
from breakglass.devnet.toolchain import project_root
from breakglass.devnet.venue.deploy import deploy_venue_set

SYNTHETIX = (
    project_root() / "node_modules" / "synthetix" / "publish" / "deployed" / "sepolia-ovm" / "deployment.json"
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stream, which closes after each invocation: a later
    test of the same process logging through it would fail."""
    yield
    structlog.reset_defaults()


def _init_and_check(manifest: Path, out: Path) -> dict[str, object]:
    runner = CliRunner()
    made = runner.invoke(app, ["init", str(manifest), "--out", str(out)], terminal_width=250)
    assert made.exit_code == 0, made.output
    checked = runner.invoke(app, ["check", str(out)], terminal_width=250)
    assert checked.exit_code == 0, checked.output
    assert ": ok" in checked.output
    again = runner.invoke(app, ["init", str(manifest), "--out", str(out)], terminal_width=250)
    assert again.exit_code == 2, "an existing file is not overwritten without --force"
    config: dict[str, object] = yaml.safe_load(out.read_text(encoding="utf-8"))
    return config


@pytest.mark.node
def test_init_on_the_reference_venue_is_accepted_by_check(tmp_path: Path, anvil: Anvil, build: Build) -> None:
    deployer = Deployer(Web3(Web3.HTTPProvider(anvil.url)), build)
    deploy_venue_set(deployer)
    manifest = tmp_path / "manifest.json"
    deployer.manifest(anvil.url).write(manifest)
    config = _init_and_check(manifest, tmp_path / "breakglass.yaml")
    policy = config["policy"]
    assert isinstance(policy, dict)
    allowed = {(a["contract"], a["function"]) for a in policy["allow"]}
    assert ("guardian", "pauseVenue") in allowed and ("guardian", "pauseMarket") in allowed
    assert not any(f.startswith(("unpause", "resume")) for _, f in allowed)
    playbooks = config["playbooks"]
    assert isinstance(playbooks, list)
    assert playbooks[0]["actions"][0]["function"] == "pauseVenue"


def test_init_on_synthetix_published_deployment_is_accepted_by_check(tmp_path: Path) -> None:
    published = json.loads(SYNTHETIX.read_text(encoding="utf-8"))
    contracts = {
        name: {"address": target["address"], "abi": published["sources"][target["source"]]["abi"]}
        for name, target in published["targets"].items()
        if name in ("SystemStatus", "PerpsV2MarketSettings", "ProxysUSD", "FuturesMarketManager")
        or name.startswith("PerpsV2ProxyETH")
    }
    manifest = tmp_path / "synthetix.json"
    manifest.write_text(
        json.dumps({"chain_id": 11155420, "rpc_url": "http://127.0.0.1:1", "contracts": contracts})
    )
    config = _init_and_check(manifest, tmp_path / "breakglass.yaml")
    playbooks = config["playbooks"]
    assert isinstance(playbooks, list)
    call = playbooks[0]["actions"][0]
    assert (call["contract"], call["function"]) == ("SystemStatus", "suspendSystem")
    policy = config["policy"]
    assert isinstance(policy, dict)
    assert {a["function"] for a in policy["allow"]} >= {"suspendFuturesMarket", "suspendFutures"}
    assert not any(a["function"].startswith("resume") for a in policy["allow"])
