"""Configuration loading: every error located by file, line and path, with accepted values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError

MANIFEST = {
    "chain_id": 31337,
    "rpc_url": "http://127.0.0.1:8545",
    "contracts": {
        name: {"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "abi": []}
        for name in ("vault", "oracle", "insurance")
    },
}


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
    path = tmp_path / "breakglass.yaml"
    path.write_text(text)
    return path


def messages(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    return [str(issue) for issue in info.value.issues]


def test_valid_config_loads_with_manifest_contracts(tmp_path: Path) -> None:
    loaded = load_config(
        write(
            tmp_path,
            "protocol: venue\ndeployment: manifest.json\nchain:\n  confirmations: 1\n"
            "monitors:\n  - id: withdrawals\n    kind: event\n    contract: vault\n"
            "    event: Withdraw\n",
        ),
        environ={},
    )
    assert set(loaded.contracts) == {"vault", "oracle", "insurance"}
    assert loaded.settings.monitors[0].id == "withdrawals"
    assert loaded.rpc_urls() == ["http://127.0.0.1:8545"]


def test_unknown_contract_names_line_path_and_closest_name(tmp_path: Path) -> None:
    text = (
        "deployment: manifest.json\nmonitors:\n  - id: a\n    kind: event\n"
        "    contract: vaultt\n    event: Withdraw\n"
    )
    [message] = messages(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'breakglass.yaml'}:5 monitors[0].contract: ")
    assert "unknown contract 'vaultt'" in message
    assert "known: insurance, oracle, vault" in message
    assert "did you mean 'vault'?" in message


def test_unknown_key_is_an_error_with_accepted_keys(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "chain:\n  confirmatons: 2\n")
    assert ":2 chain.confirmatons: unknown key 'confirmatons'" in message
    assert "did you mean 'confirmations'?" in message
    assert "accepted: backfill_worker, chain_id, confirmations" in message


def test_every_error_of_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    text = (
        "chain:\n  confirmations: -1\n"
        "monitors:\n"
        "  - id: a\n    kind: evnt\n"
        "  - id: b\n    kind: invariant\n    severity: severe\n    expect: 'x > 0'\n"
    )
    found = messages(tmp_path, text)
    assert [m.split(" ")[0].rsplit(":", 1)[1] for m in found] == ["2", "5", "6", "8"]
    assert "unknown kind 'evnt'" in found[1]
    assert "monitors[1].calls: required key is missing" in found[2]
    assert "monitors[1].severity" in found[3] and '"severe"' in found[3]


def test_duplicate_monitor_ids_and_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    dup_key = messages(tmp_path, "protocol: a\nprotocol: b\n")
    assert dup_key == [f"{tmp_path / 'breakglass.yaml'}:2 protocol: duplicate key"]
    text = (
        "deployment: manifest.json\nmonitors:\n"
        "  - {id: a, kind: event, contract: vault, event: X}\n"
        "  - {id: a, kind: event, contract: vault, event: Y}\n"
    )
    [message] = messages(tmp_path, text)
    assert ":4 monitors[1].id: duplicate monitor 'a'" in message


def test_env_interpolation_fills_secrets_and_never_echoes_them(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  rpc: ['https://node.example/${RPC_KEY}']\n")
    loaded = load_config(path, environ={"RPC_KEY": "s3cr3t-key-value"})
    assert loaded.rpc_urls() == ["https://node.example/s3cr3t-key-value"]
    assert any("s3cr3t-key-value" in secret for secret in loaded.secrets)
    assert "s3cr3t-key-value" not in repr(loaded.settings)


def test_missing_env_variable_is_located(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "chain:\n  rpc: ['https://node.example/${RPC_KEY}']\n")
    assert ":2 chain.rpc[0]: environment variable RPC_KEY is not set" in message


def test_invalid_value_from_env_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "chain:\n  rpc: ['${RPC_URL}']\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"RPC_URL": "ftp://leaky-secret"})
    assert "leaky-secret" not in str(info.value)
    assert "chain.rpc" in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "chain:\n  rpc: [unclosed\nprotocol: x\n")
    assert "invalid YAML" in message and ":3" in message


def test_missing_manifest_and_missing_abi_file_are_located(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "deployment: nope.json\ncontracts:\n  - name: x\n"
        "    address: '0x5FbDB2315678afecb367f032d93F642f64180aa3'\n    abi: x.json\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    text = str(info.value)
    assert "c.yaml:1 deployment:" in text and "deployment manifest not found" in text
    assert "c.yaml:5 contracts[0].abi: ABI file" in text and "not found" in text


def test_zero_confirmations_is_legal_but_warned(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, "chain:\n  confirmations: 0\n"), environ={})
    assert any("0 confirmations" in str(w) for w in loaded.warnings)


def test_invalid_secret_written_in_the_file_is_not_echoed(tmp_path: Path) -> None:
    [message] = messages(tmp_path, "chain:\n  rpc: ['ftp://user:hunter2@node.example']\n")
    assert "hunter2" not in message
    assert ":2 chain.rpc: " in message and "http://" in message


@pytest.mark.parametrize("optional", [False, True])
def test_a_call_naming_an_attacker_its_monitors_never_provide_is_warned_unless_optional(
    tmp_path: Path, optional: bool
) -> None:
    block = {"type": "function", "name": "blockAccount", "inputs": [{"name": "a", "type": "address"}],
             "outputs": [], "stateMutability": "nonpayable"}  # fmt: skip
    manifest = {**MANIFEST, "contracts": {"guardian": {"address": MANIFEST["contracts"]["vault"]["address"],
                                                       "abi": [block]}}}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    path = tmp_path / "breakglass.yaml"
    path.write_text(
        "deployment: manifest.json\n"
        "monitors:\n"
        "  - {id: books, kind: invariant, calls: {p: guardian.blockAccount(0)}, expect: 'true'}\n"
        "playbooks:\n"
        "  - id: contain\n"
        "    match: {monitors: [books]}\n"
        "    actions:\n"
        "      - {kind: call, id: block-attacker, contract: guardian, function: blockAccount,\n"
        f"         args: ['{{evidence.attacker}}'], optional: {str(optional).lower()}}}\n"
    )
    warned = [str(w) for w in load_config(path, environ={}).warnings if "evidence.attacker" in str(w)]
    if optional:
        assert warned == []
    else:
        [message] = warned
        assert (
            "playbooks[0].actions[0].args" in message and "books" in message and "optional: true" in message
        )
