"""Monitor declarations: CEL checked at load with file:line, window rules, every kind parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError

ABI = [{"type": "event", "name": "Transfer", "inputs": []}]


def write(tmp_path: Path, monitors: str) -> Path:
    (tmp_path / "abi.json").write_text(json.dumps(ABI), encoding="utf-8")
    path = tmp_path / "bg.yaml"
    path.write_text(
        "contracts:\n  - {name: token, address: '0x"
        + "11" * 20
        + "', abi: abi.json}\nmonitors:\n"
        + monitors,
        encoding="utf-8",
    )
    return path


def test_a_cel_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "  - id: a\n    kind: transaction\n    where: 'tx.value >'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [issue] = info.value.issues
    assert issue.line == 6 and issue.path == "monitors[0].where" and "invalid CEL" in issue.message


def test_a_flow_needs_exactly_one_window_and_a_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "  - {id: f, kind: flow, token: token, holders: [token], window_blocks: 5}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "max_outflow, max_fraction" in str(info.value)


def test_every_kind_parses_and_references_are_checked(tmp_path: Path) -> None:
    monitors = (
        "  - {id: e, kind: event, contract: token, event: Transfer}\n"
        "  - {id: c, kind: call, contract: token, function: mint}\n"
        "  - {id: t, kind: transaction, to: [token], where: 'tx.value > 0'}\n"
        "  - {id: i, kind: invariant, calls: {s: token.totalSupply()}, expect: 's > 0'}\n"
        "  - {id: f, kind: flow, token: token, holders: [token], window_seconds: 60, max_outflow: 5}\n"
        "  - {id: g, kind: governance, contracts: [token]}\n"
        "  - {id: s, kind: setup, protocol: [token], mixers: ['0x" + "22" * 20 + "']}\n"
        "  - {id: x, kind: intel, selectors: ['0xdeadbeef']}\n"
        "  - {id: p, kind: plugin, plugin: 'pkg.mod:Cls'}\n"
        "  - {id: bad, kind: governance, contracts: [tokn]}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, monitors), environ={})
    [issue] = info.value.issues
    assert issue.path == "monitors[9].contracts[0]" and "did you mean 'token'?" in issue.message
