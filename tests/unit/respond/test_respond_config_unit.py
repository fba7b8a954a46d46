"""The response sections of a configuration: located errors, references, one key source, public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import breakglass.respond
from breakglass.config import load_config
from breakglass.errors import ConfigError

ABI = [{"type": "function", "name": "pause", "inputs": [], "outputs": [], "stateMutability": "nonpayable"}]


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "venue.abi.json").write_text(json.dumps(ABI))
    path = tmp_path / "c.yaml"
    path.write_text(
        "contracts: [{name: venue, abi: venue.abi.json,\n"
        "             address: '0x5FbDB2315678afecb367f032d93F642f64180aa3'}]\n"
        "monitors: [{id: paused, kind: event, contract: venue, event: Paused}]\n" + body
    )
    return path


def issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    return [str(i) for i in err.value.issues]


def test_a_playbook_naming_an_unknown_monitor_or_contract_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """playbooks:
  - id: pb
    match: {monitors: [pausd]}
    actions:
      - {kind: call, id: a, contract: vneue, function: pause}
policy:
  allow: [{contract: venu, function: pause}]
""",
    )
    found = issues(path)
    wanted = "c.yaml:6 playbooks[0].match.monitors[0]: unknown monitor 'pausd' (known: paused); "
    wanted += "did you mean 'paused'?"
    assert any(i.endswith(wanted) for i in found), found
    assert any("playbooks[0].actions[0].contract: unknown contract 'vneue'" in i for i in found), found
    assert any("policy.allow[0].contract: unknown contract 'venu'" in i for i in found), found


@pytest.mark.parametrize(
    ("guardian", "message"),
    [
        ("{}", "set exactly one of 'keystore'"),
        ("{env: K, keystore: k.json, password: x}", "set exactly one of 'keystore'"),
        ("{keystore: k.json}", "'keystore' needs 'password'"),
    ],
)
def test_the_guardian_key_has_exactly_one_source(tmp_path: Path, guardian: str, message: str) -> None:
    assert any(message in i for i in issues(write(tmp_path, f"responder: {{guardian: {guardian}}}\n")))


@pytest.mark.parametrize(
    ("via", "second_id", "message"),
    [
        ("multisig", "b", "actions[0].via: String should match pattern"),
        ("guardian", "a", "duplicate action id"),
    ],
)
def test_duplicate_action_ids_and_bad_via_are_refused(
    tmp_path: Path, via: str, second_id: str, message: str
) -> None:
    playbook = f"""playbooks:
  - id: pb
    actions:
      - {{kind: call, id: a, contract: venue, function: pause, via: {via}}}
      - {{kind: notify, id: {second_id}, message: hi}}
"""
    found = issues(write(tmp_path, playbook))
    assert any(message in i for i in found), found


def test_the_public_api_is_what_all_says() -> None:
    for name in breakglass.respond.__all__:
        assert getattr(breakglass.respond, name) is not None
    assert {"build_responder", "Responder", "ActionEvent", "SafeService", "PendingFees"} <= set(
        breakglass.respond.__all__
    )
