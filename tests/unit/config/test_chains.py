"""Several chains in one configuration (``chains:``): placement, one-chain views, located errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from breakglass.check import check_config
from breakglass.config import load_config
from breakglass.errors import ConfigError

ABI = [
    {"type": "function", "name": "pause", "inputs": [], "outputs": [], "stateMutability": "nonpayable"},
    {"type": "function", "name": "paused", "inputs": [], "outputs": [{"name": "", "type": "bool"}],
     "stateMutability": "view"},
    {"type": "function", "name": "totalAssets", "inputs": [], "outputs": [{"name": "", "type": "uint256"}],
     "stateMutability": "view"},
    {"type": "event", "name": "Withdraw", "anonymous": False,
     "inputs": [{"name": "amount", "type": "uint256", "indexed": False}]},
]  # fmt: skip
A = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

TWO_CHAINS = """\
protocol: venue
chains:
  - name: alpha
    chain_id: 31337
    rpc: ["http://127.0.0.1:8545"]
    confirmations: 1
  - name: beta
    chain_id: 31338
    rpc: ["http://127.0.0.1:8546"]
    confirmations: 2
    guardian: { env: BETA_GUARDIAN_KEY }
responder:
  guardian: { env: GUARDIAN_KEY }
contracts:
  - { name: vault_a, chain: alpha, address: "%(a)s", abi: vault.json }
  - { name: vault_b, chain: beta, address: "%(a)s", abi: vault.json }
monitors:
  - id: drain-a
    kind: invariant
    calls: { assets: vault_a.totalAssets() }
    expect: assets >= prev.assets * 0.9
  - id: withdraw-b
    kind: event
    contract: vault_b
    event: Withdraw
  - id: gas-b
    kind: balance
    chain: beta
    address: "%(a)s"
    min_eth: 1
playbooks:
  - id: pause-a
    match: { monitors: [drain-a] }
    actions: [{ kind: call, id: pause, contract: vault_a, function: pause }]
  - id: pause-b
    match: { monitors: [withdraw-b] }
    actions: [{ kind: call, id: pause, contract: vault_b, function: pause }]
  - id: page
    actions: [{ kind: notify, id: page, message: "{finding.title}" }]
policy:
  allow:
    - { contract: vault_b, function: pause }
    - { contract: vault_a, function: pause }
""" % {"a": A}  # noqa: UP031


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "vault.json").write_text(json.dumps(ABI))
    path = tmp_path / "breakglass.yaml"
    path.write_text(text)
    return path


def messages(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    return [str(issue) for issue in info.value.issues]


def test_a_one_chain_file_is_its_own_only_view(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "chain:\n  rpc: ['http://127.0.0.1:8545']\n"), environ={})
    assert loaded.per_chain() == [loaded]
    assert loaded.chain_names == ("devnet",)
    assert loaded.rpc_urls() == ["http://127.0.0.1:8545"]
    # the one chain may be named by a contract too (a file made ready for a second chain)
    text = (
        f"chain: {{ name: main }}\ncontracts:\n  - {{ name: v, chain: main, address: '{A}', abi: v.json }}\n"
    )
    (tmp_path / "v.json").write_text(json.dumps(ABI))
    assert set(load_config(write(tmp_path, text), environ={}).contracts) == {"v"}


def test_each_chain_view_has_its_contracts_monitors_playbooks_policy_and_guardian(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, TWO_CHAINS), environ={})
    assert loaded.chain_names == ("alpha", "beta")
    assert loaded.chain_id is None and loaded.rpc_urls() == []  # each chain has its own
    alpha, beta = loaded.per_chain()
    assert (alpha.chain_id, beta.chain_id) == (31337, 31338)
    assert alpha.rpc_urls() == ["http://127.0.0.1:8545"] and beta.rpc_urls() == ["http://127.0.0.1:8546"]
    assert (alpha.settings.chain.name, alpha.settings.chain.confirmations) == ("alpha", 1)
    assert set(alpha.contracts) == {"vault_a"} and set(beta.contracts) == {"vault_b"}
    assert [m.id for m in alpha.settings.monitors] == ["drain-a"]
    assert [m.id for m in beta.settings.monitors] == ["withdraw-b", "gas-b"]
    assert [p.id for p in alpha.settings.playbooks] == ["pause-a", "page"]  # a notice is every chain's
    assert [p.id for p in beta.settings.playbooks] == ["pause-b", "page"]
    assert [a.contract for a in beta.settings.policy.allow] == ["vault_b"]
    assert (
        alpha.settings.responder.guardian is not None
        and alpha.settings.responder.guardian.env == "GUARDIAN_KEY"
    )
    assert (
        beta.settings.responder.guardian is not None
        and beta.settings.responder.guardian.env == "BETA_GUARDIAN_KEY"
    )
    # a view's problem is located at the line of the file the item came from
    lines = write(tmp_path, TWO_CHAINS).read_text().splitlines()
    assert beta.line_of(("monitors", 1)) == lines.index("  - id: gas-b") + 1
    assert (
        beta.line_of(("policy", "allow", 0))
        == lines.index("    - { contract: vault_b, function: pause }") + 1
    )
    assert beta.line_of(("chain", "chain_id")) == lines.index("    chain_id: 31338") + 1
    issue = beta.issue(("playbooks", 0, "actions", 0), "x")
    assert (issue.line, issue.path) == (lines.index("  - id: pause-b") + 3, "playbooks[1].actions[0]")


def test_check_reports_a_chain_views_problem_at_its_line(tmp_path: Path) -> None:
    text = TWO_CHAINS.replace(
        "contract: vault_b\n    event: Withdraw", "contract: vault_b\n    event: Withdrew"
    )
    report = check_config(write(tmp_path, text), environ={})
    [error] = report.errors
    line = text.splitlines().index("    event: Withdrew") + 1
    assert str(error).startswith(f"{tmp_path / 'breakglass.yaml'}:{line} monitors[1].event")
    assert check_config(write(tmp_path, TWO_CHAINS), environ={}).ok


@pytest.mark.parametrize(
    ("change", "at", "expected"),
    [
        # a contract on an unknown chain: the closest name
        (("chain: beta, address", "chain: bta, address"), "  - { name: vault_b",
         "contracts[1].chain: unknown chain 'bta' (known: alpha, beta); did you mean 'beta'?"),
        # which chain, when there are two
        (("chain: beta, address", "address"), "  - { name: vault_b",
         "contracts[1]: which chain is 'vault_b' on? set 'chain' (known: alpha, beta)"),
        # one monitor over two chains
        (("assets: vault_a.totalAssets()", "assets: vault_a.totalAssets(), b: vault_b.totalAssets()"),
         "  - id: drain-a",
         "monitors[0]: names contract 'vault_a' of chain 'alpha' and contract 'vault_b' of chain 'beta'"),
        # a monitor naming no contract and no chain
        (("    chain: beta\n    address", "    address"), "  - id: gas-b",
         "monitors[2]: a monitor naming no contract: say which chain with 'chain' (known: alpha, beta)"),
        # an explicit chain contradicting the contracts named
        (("contract: vault_b\n", "contract: vault_b\n    chain: alpha\n"), "    chain: alpha",
         "monitors[1].chain: 'alpha', but contract 'vault_b' is on chain 'beta'"),
        # a playbook on chain alpha triggered by a finding of chain beta
        (("monitors: [drain-a]", "monitors: [drain-a, withdraw-b]"), "    match: { monitors: [drain-a, with",
         "playbooks[0].match.monitors[1]: monitor 'withdraw-b' watches chain 'beta', but this playbook acts "
         "on chain 'alpha': a containment acts on the chain its finding came from"),
        # two chains with one id
        (("chain_id: 31338", "chain_id: 31337"), "    chain_id: 31337",
         "chains[1].chain_id: 31337 is also chain 'alpha''s id"),
        # one mempool endpoint for two chains
        (("protocol: venue\n", "protocol: venue\nmempool: { enabled: true, ws: 'ws://127.0.0.1:1' }\n"),
         "mempool: { enabled", "mempool.ws: one endpoint for several chains"),
        # chain and chains
        (("protocol: venue\n", "protocol: venue\nchain: { confirmations: 3 }\n"), "chain: { conf",
         "chain: set either 'chain' (one chain) or 'chains' (several), not both"),
    ],
)  # fmt: skip
def test_placement_errors_are_located(
    tmp_path: Path, change: tuple[str, str], at: str, expected: str
) -> None:
    text = TWO_CHAINS.replace(*change)
    assert text != TWO_CHAINS
    lines = text.splitlines()
    line = max(n for n, text in enumerate(lines, 1) if text.startswith(at))  # the last such line
    found = messages(tmp_path, text)
    assert any(m.startswith(f"{tmp_path / 'breakglass.yaml'}:{line} {expected}") for m in found), found


def test_the_manifests_contracts_belong_to_the_chain_of_its_id(tmp_path: Path) -> None:
    manifest = {"chain_id": 31338, "rpc_url": "http://127.0.0.1:8546",
                "contracts": {"oracle": {"address": A, "abi": ABI}}}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    text = TWO_CHAINS.replace("protocol: venue\n", "protocol: venue\ndeployment: manifest.json\n")
    loaded = load_config(write(tmp_path, text), environ={})
    alpha, beta = loaded.per_chain()
    assert set(beta.contracts) == {"vault_b", "oracle"} and set(alpha.contracts) == {"vault_a"}
    assert beta.deployment is not None and beta.deployment.rpc_url == "http://127.0.0.1:8546"
    assert alpha.deployment is not None and alpha.deployment.rpc_url is None
    [message] = messages(tmp_path, text.replace("chain_id: 31338", "chain_id: 10"))
    assert ":2 deployment: the manifest is of chain id 31338, which no entry of 'chains' has" in message


def test_watch_and_test_monitor_take_one_chain_of_several(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from breakglass.cli.main import app

    path = write(tmp_path, TWO_CHAINS)
    runner = CliRunner()
    unchosen = runner.invoke(app, ["test-monitor", str(path), "--block", "1"])
    assert unchosen.exit_code == 2 and "protects chains alpha, beta: choose one" in _plain(unchosen.output)
    typo = runner.invoke(app, ["test-monitor", str(path), "--block", "1", "--chain", "bta"])
    assert typo.exit_code == 2 and "did you mean 'beta'?" in _plain(typo.output)
    from breakglass.cli.watch import one_chain

    beta = one_chain(path, "beta")
    assert beta.chain_id == 31338 and set(beta.contracts) == {"vault_b"}
    mempool = TWO_CHAINS.replace(
        "protocol: venue\n", "protocol: venue\nmempool: { ignore: [vault_a, '0x%s'] }\n" % ("ab" * 20)
    )
    assert one_chain(write(tmp_path, mempool), "beta").settings.mempool.ignore == ["0x" + "ab" * 20]


def _plain(output: str) -> str:
    """Rich's error box without its frame and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())
