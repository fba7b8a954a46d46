"""The intel section: sources named by intel monitors must exist, and the signer must be a local key."""

from __future__ import annotations

from pathlib import Path

import pytest

from breakglass.config import load_config
from breakglass.errors import ConfigError

SIGNER = "0x" + "12" * 20


def test_an_intel_monitor_naming_an_unknown_source_is_an_error_with_the_closest_name(tmp_path: Path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text(
        f"intel:\n  sources:\n    - {{name: venue-a, file: feed, signers: ['{SIGNER}']}}\n"
        "monitors:\n  - {id: shared, kind: intel, sources: [venue-b]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [issue] = info.value.issues
    assert issue.path == "monitors[0].sources[0]" and "venue-a" in issue.message


def test_a_setup_monitor_naming_an_unknown_source_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text(
        f"intel:\n  sources:\n    - {{name: venue-a, file: feed, signers: ['{SIGNER}']}}\n"
        "monitors:\n  - {id: setup, kind: setup, protocol: [vault], sources: [venue-b]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [issue] = [i for i in info.value.issues if i.path == "monitors[0].sources[0]"]
    assert "venue-a" in issue.message


def test_a_source_must_name_at_least_one_trusted_signer(tmp_path: Path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text("intel:\n  sources:\n    - {name: venue-a, file: feed, signers: []}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.issues[0].path == "intel.sources[0].signers"


def test_the_intel_signer_cannot_be_a_remote_signer(tmp_path: Path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text(
        f"intel:\n  signer: {{remote: {{url: 'http://127.0.0.1:9000', address: '{SIGNER}'}}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "keystore" in info.value.issues[0].message


def test_a_source_no_intel_monitor_matches_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text(
        f"intel:\n  sources:\n    - {{name: venue-a, file: feed, signers: ['{SIGNER}']}}\n"
        f"    - {{name: venue-b, file: feed, signers: ['{SIGNER}']}}\n"
        "monitors:\n  - {id: shared, kind: intel, sources: [venue-a]}\n",
        encoding="utf-8",
    )
    loaded = load_config(path, environ={})
    [warning] = [w for w in loaded.warnings if w.path.startswith("intel")]
    assert warning.path == "intel.sources[1].name" and "venue-b" in warning.message
