"""The deployment as configuration: a manifest, Foundry out/ or Hardhat artifacts/ folders, or ABIs by
hand; each problem is one located error; nothing at run time needs the devnet package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from breakglass.config import inspect_config, load_config
from breakglass.errors import ConfigError

VAULT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ORACLE = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
ABI = [
    {"type": "event", "name": "Withdraw", "anonymous": False, "inputs": []},
    {"type": "function", "name": "pause", "inputs": [], "outputs": [], "stateMutability": "nonpayable"},
]


def foundry_out(root: Path) -> Path:
    """A Foundry out/ folder: out/<File>.sol/<Contract>.json, build-info and a second compiler version."""
    out = root / "out"
    (out / "Vault.sol").mkdir(parents=True)
    (out / "Vault.sol" / "Vault.json").write_text(json.dumps({"abi": ABI, "bytecode": {"object": "0x"}}))
    (out / "Vault.sol" / "Vault.0.8.20.json").write_text(json.dumps({"abi": ABI}))
    (out / "Oracle.sol").mkdir()
    (out / "Oracle.sol" / "Oracle.json").write_text(json.dumps({"abi": []}))
    (out / "build-info").mkdir()
    (out / "build-info" / "abc.json").write_text(json.dumps({"abi": "not this"}))
    return out


def hardhat_artifacts(root: Path) -> Path:
    """A Hardhat artifacts/ folder, with its debug files and two contracts of one name."""
    artifacts = root / "artifacts"
    for source in ("contracts/Vault.sol", "contracts/mocks/Vault.sol"):
        folder = artifacts / source
        folder.mkdir(parents=True)
        abi = ABI if "mocks" not in source else []
        artifact = {"_format": "hh-sol-artifact-1", "contractName": "Vault", "sourceName": source, "abi": abi}
        (folder / "Vault.json").write_text(json.dumps(artifact))
        (folder / "Vault.dbg.json").write_text(json.dumps({"buildInfo": "x"}))
    return artifacts


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "breakglass.yaml"
    path.write_text(text)
    return path


def issues_of(path: Path) -> list[str]:
    _loaded, issues = inspect_config(path, environ={})
    return [str(i) for i in issues]


def test_foundry_out_gives_abis_by_contract_name(tmp_path: Path) -> None:
    foundry_out(tmp_path)
    path = config(
        tmp_path,
        f"deployment:\n  artifacts: out\n  deployer: '{ORACLE}'\n  deployment_block: 7\n"
        f"contracts:\n  - {{name: vault, address: '{VAULT}', artifact: Vault}}\n"
        f"  - {{name: oracle, address: '{ORACLE}', artifact: Oracle.sol:Oracle}}\n",
    )
    loaded = load_config(path, environ={})
    assert loaded.contracts["vault"].abi == ABI
    assert loaded.contracts["vault"].artifact == "Vault.sol:Vault"
    assert loaded.contracts["oracle"].address == ORACLE
    assert loaded.deployment is not None
    assert (loaded.deployment.deployer, loaded.deployment.block) == (ORACLE, 7)
    assert loaded.chain_id is None and loaded.rpc_urls() == []


def test_hardhat_artifacts_need_a_qualified_name_when_two_sources_share_one(tmp_path: Path) -> None:
    hardhat_artifacts(tmp_path)
    text = (
        "deployment: {artifacts: [artifacts]}\n"
        f"contracts:\n  - {{name: vault, address: '{VAULT}', artifact: Vault}}\n"
    )
    [message] = issues_of(config(tmp_path, text))
    assert ":3 contracts[0].artifact: artifact 'Vault' is ambiguous" in message
    assert "contracts/Vault.sol:Vault, contracts/mocks/Vault.sol:Vault" in message
    qualified = text.replace("artifact: Vault", "artifact: contracts/Vault.sol:Vault")
    loaded = load_config(config(tmp_path, qualified), environ={})
    assert loaded.contracts["vault"].abi == ABI


def test_a_misspelt_artifact_is_one_error_with_the_closest_name(tmp_path: Path) -> None:
    foundry_out(tmp_path)
    text = (
        "deployment: {artifacts: out}\n"
        f"contracts:\n  - {{name: vault, address: '{VAULT}', artifact: Vualt}}\n"
        "monitors:\n  - {id: w, kind: event, contract: vault, event: Withdraw}\n"
    )
    [message] = issues_of(config(tmp_path, text))
    assert ":3 contracts[0].artifact: no artifact 'Vualt'" in message and "did you mean 'Vault'?" in message


def test_abi_by_hand_and_its_errors(tmp_path: Path) -> None:
    (tmp_path / "vault.json").write_text(json.dumps({"abi": ABI}))
    good = f"contracts:\n  - {{name: vault, address: '{VAULT}', abi: vault.json}}\n"
    assert load_config(config(tmp_path, good), environ={}).contracts["vault"].abi == ABI
    [missing] = issues_of(config(tmp_path, good.replace("vault.json", "nope.json")))
    assert ":2 contracts[0].abi: ABI file" in missing and "not found" in missing
    [both] = issues_of(config(tmp_path, good.replace("abi: vault.json", "abi: vault.json, artifact: Vault")))
    assert "set exactly one of 'abi'" in both
    [needs_folder] = issues_of(config(tmp_path, good.replace("abi: vault.json", "artifact: Vault")))
    assert "'artifact' needs deployment.artifacts" in needs_folder


def test_a_missing_manifest_is_one_error_not_one_per_reference(tmp_path: Path) -> None:
    monitors = "".join(f"  - {{id: m{i}, kind: event, contract: c{i}, event: E}}\n" for i in range(35))
    path = config(tmp_path, f"deployment: missing.json\nmonitors:\n{monitors}")
    loaded, issues = inspect_config(path, environ={})
    assert [str(i).split(" ", 1)[0].rsplit(":", 1)[1] for i in issues] == ["1"]
    assert "deployment manifest not found" in str(issues[0]) and "missing.json" in str(issues[0])
    assert loaded is not None and {f"c{i}" for i in range(35)} <= loaded.unresolved
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert len(info.value.issues) == 1


def test_a_missing_artifacts_folder_is_one_error(tmp_path: Path) -> None:
    text = (
        f"deployment: {{artifacts: out}}\ncontracts:\n  - {{name: a, address: '{VAULT}', artifact: A}}\n"
        f"  - {{name: b, address: '{ORACLE}', artifact: B}}\n"
        "monitors:\n  - {id: w, kind: event, contract: a, event: Withdraw}\n"
    )
    [message] = issues_of(config(tmp_path, text))
    assert ":1 deployment.artifacts[0]: artifacts folder" in message


def test_nothing_at_run_time_imports_the_devnet_package() -> None:
    # A fresh interpreter: this test process may have loaded it for other tests.
    modules = [
        "breakglass.app",
        "breakglass.config",
        "breakglass.detect.build",
        "breakglass.detect.governance",
        "breakglass.detect.service",
        "breakglass.respond.build",
        "breakglass.respond.playbook",
        "breakglass.simulate",
    ]
    probe = f"import json, sys\nfor m in {modules!r}: __import__(m)\n" + (
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('breakglass.devnet'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
