"""CLI start-up: a command loads only what it uses, and no console is made at import."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import pytest
from rich.console import Console

import breakglass.cli
from breakglass.cli.devnet import DEPLOYMENT_SET_NAMES
from breakglass.devnet.deploy import DEPLOYMENT_SETS

# Each costs from tenths of a second to seconds to import; the commands that need one import it.
HEAVY = (
    "web3",
    "eth_account",
    "safe_eth",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "playwright",
    "cel",
    "sqlalchemy",
)

CLI_MODULES = sorted(
    info.name
    for info in pkgutil.iter_modules(breakglass.cli.__path__, prefix="breakglass.cli.")
    if not info.name.endswith("__main__")
)


def test_importing_the_cli_loads_no_chain_web_store_or_plotting_library() -> None:
    # A fresh interpreter: this test process may have loaded them for other tests.
    probe = (
        "import json, sys, breakglass.cli.main; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("name", CLI_MODULES)
def test_cli_modules_make_no_console_at_import(name: str) -> None:
    # A console made at import keeps the terminal width of that moment (COLUMNS) for good.
    module = importlib.import_module(name)
    consoles = [attr for attr, value in vars(module).items() if isinstance(value, Console)]
    assert consoles == []


def test_devnet_help_names_every_deployment_set() -> None:
    assert sorted(DEPLOYMENT_SET_NAMES) == sorted(DEPLOYMENT_SETS)
