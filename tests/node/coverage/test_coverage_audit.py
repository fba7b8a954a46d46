"""The pause-coverage audit on anvil: a pause that forgets a withdraw path is flagged, a complete one
is not; the node's state is the same after the audit as before."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from web3 import Web3

from breakglass.config import load_config
from breakglass.coverage.audit import AuditOptions
from breakglass.coverage.service import audit_config
from breakglass.devnet.anvil import Anvil
from breakglass.devnet.deploy import Deployer
from breakglass.devnet.solc import Build

pytestmark = pytest.mark.timeout(180)

USERS = {"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"}

CONFIG = """
chain: {{rpc: ["{rpc}"]}}
contracts:
  - {{name: vault, address: "{vault}", abi: vault.json}}
  - {{name: token, address: "{token}", abi: token.json}}
playbooks:
  - id: stop
    actions:
      - {{kind: call, id: block, contract: vault, function: blockAccount, args: ["{{evidence.attacker}}"]}}
      - {{kind: call, id: pause, contract: vault, function: pause}}
"""


def _deploy(node: Anvil, build: Build, folder: Path, *, forgetful: bool) -> tuple[Path, str]:
    w3 = Web3(Web3.HTTPProvider(node.url))
    admin, guardian, user, other = w3.eth.accounts[:4]
    deployer = Deployer(w3, build)
    token = deployer.deploy("token", "MockERC20", "Test USD", "tUSD", 6)
    vault = deployer.deploy("vault", "PauseCoverageVault", token.address, guardian, forgetful)
    for fn, sender in (
        (token.functions.mint(user, 1_000 * 10**6), admin),
        (token.functions.approve(vault.address, 100 * 10**6), user),
        (vault.functions.deposit(100 * 10**6), user),
        (vault.functions.withdraw(10 * 10**6), user),  # history has a withdraw to replay
        (token.functions.mint(other, 1_000 * 10**6), admin),
        (token.functions.approve(vault.address, 50 * 10**6), other),
        (vault.functions.deposit(50 * 10**6), other),  # a second user: a block is not a pause
    ):
        w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    (folder / "vault.json").write_text(json.dumps(deployer.records["vault"].abi))
    (folder / "token.json").write_text(json.dumps(deployer.records["token"].abi))
    config = folder / "breakglass.yaml"
    config.write_text(CONFIG.format(rpc=node.url, vault=vault.address, token=token.address))
    return config, guardian


@pytest.mark.parametrize("forgetful", [True, False], ids=["incomplete-pause", "complete-pause"])
def test_a_pause_that_forgets_a_withdraw_path_is_flagged_and_a_complete_one_is_not(
    anvil: Anvil, build: Build, tmp_path: Path, forgetful: bool
) -> None:
    config, guardian = _deploy(anvil, build, tmp_path, forgetful=forgetful)
    head = anvil.rpc("eth_blockNumber")

    report = audit_config(
        load_config(config),
        guardian=guardian,
        contracts=["vault"],
        holders=["vault"],
        options=AuditOptions(history_blocks=32, budget=6),
    )

    block, pause, _ = report.results
    assert [r.name for r in report.results] == [
        f"vault.blockAccount({block.subject})",
        "vault.pause()",
        "stop",
    ]
    assert block.subject in USERS  # a user who took value out stands for the attacker
    for result in report.results:
        verdicts = {f.function: f.verdict for f in result.functions}
        assert result.applied, result.error
        assert verdicts["vault.withdraw(uint256)"] == "refused"
        assert verdicts["vault.emergencyWithdraw(uint256)"] == ("value-out" if forgetful else "refused")
    assert {f.function: f.verdict for f in pause.functions}["vault.poke()"] == "open"
    if forgetful:
        assert report.flagged == [(r.name, "vault.emergencyWithdraw(uint256)") for r in report.results]
        moved = [a for f in pause.functions for a in f.attempts if a.outflow]
        assert moved and all(a.outflow["token"] > 0 for a in moved)
        assert "3 value path(s) left open" in report.text()
    else:
        assert report.flagged == []
    assert report.probes["history"] >= 2  # deposit and withdraw were replayed from the chain
    assert "vault.withdraw(uint256)" not in report.untested
    assert anvil.rpc("eth_blockNumber") == head  # the fork took the calls, the node none


def test_the_audit_on_a_devnet_itself_restores_its_state(
    anvil_factory: Callable[..., Anvil], build: Build, tmp_path: Path
) -> None:
    node = anvil_factory()
    config, guardian = _deploy(node, build, tmp_path, forgetful=True)
    before = node.rpc("eth_getBlockByNumber", "latest", False)["stateRoot"]

    report = audit_config(
        load_config(config),
        fork=False,
        guardian=guardian,
        contracts=["vault"],
        options=AuditOptions(budget=4),
    )

    assert ("vault.pause()", "vault.emergencyWithdraw(uint256)") in report.flagged
    assert node.rpc("eth_getBlockByNumber", "latest", False)["stateRoot"] == before


def test_the_command_writes_json_and_html_and_fails_strict_on_an_open_path(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from breakglass.cli.main import app

    config, guardian = _deploy(anvil, build, tmp_path, forgetful=True)
    out_json, out_html = tmp_path / "coverage.json", tmp_path / "coverage.html"

    result = CliRunner().invoke(
        app,
        ["audit", "coverage", str(config), "--guardian", guardian, "--contract", "vault", "--budget", "4",
         "--json", str(out_json), "--html", str(out_html), "--strict"],
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert "OPEN VALUE PATH: vault.emergencyWithdraw(uint256)" in result.output
    data = json.loads(out_json.read_text())
    assert {"containment": "vault.pause()", "function": "vault.emergencyWithdraw(uint256)"} in data["flagged"]
    assert "OPEN VALUE PATH" in out_html.read_text()


def test_without_history_a_known_user_given_as_sender_still_finds_the_forgotten_path(
    anvil: Anvil, build: Build, tmp_path: Path
) -> None:
    config, guardian = _deploy(anvil, build, tmp_path, forgetful=True)
    user = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    loaded = load_config(config)

    blind = audit_config(
        loaded, guardian=guardian, contracts=["vault"], options=AuditOptions(history_blocks=0)
    )
    told = audit_config(
        loaded,
        guardian=guardian,
        contracts=["vault"],
        options=AuditOptions(history_blocks=0, senders=(user,)),
    )

    assert blind.probes["history"] == 0 and blind.flagged == []
    assert "vault.emergencyWithdraw(uint256)" in blind.untested  # a fresh account holds nothing to take
    assert ("vault.pause()", "vault.emergencyWithdraw(uint256)") in told.flagged
