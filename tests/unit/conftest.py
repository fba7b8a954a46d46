"""Fixtures of the unit suites that load a whole configuration file: one written beside a pausable
vault's ABI, and structlog put back after the CLI ran."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

VAULT_ABI = [
    {"type": "function", "name": "pause", "inputs": [], "outputs": [], "stateMutability": "nonpayable"},
    {"type": "event", "name": "Paused", "inputs": [], "anonymous": False},
]


@pytest.fixture
def vault_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a configuration's ``text`` as ``bg.yaml`` in ``tmp_path`` beside ``vault.json`` (an ABI with
    ``pause()`` and ``Paused``, for a contract declared with ``abi: vault.json``); its path."""

    def write(text: str) -> Path:
        (tmp_path / "vault.json").write_text(json.dumps(VAULT_ABI), encoding="utf-8")
        path = tmp_path / "bg.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def reset_cli_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stream, which closes after each invocation: structlog's
    defaults again after the test (``pytestmark = pytest.mark.usefixtures("reset_cli_logging")``)."""
    yield
    structlog.reset_defaults()
