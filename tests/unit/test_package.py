"""The package's shape: every module imports, says its job in a docstring, and exports what it names."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import breakglass

# Modules whose import needs an optional extra are still imported: `make setup` installs every extra.
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(breakglass.__path__, prefix="breakglass.")
    if ".migrations." not in info.name and not info.name.endswith("__main__")
)


def load(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_opens_with_a_line_on_its_job(name: str) -> None:
    doc = (load(name).__doc__ or "").strip()
    assert doc, f"{name} has no module docstring"


@pytest.mark.parametrize("name", MODULES)
def test_every_name_in_all_exists(name: str) -> None:
    module = load(name)
    exported = getattr(module, "__all__", [])
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


def test_version_is_exported() -> None:
    assert breakglass.__all__ == ["__version__"]
    assert breakglass.__version__.count(".") == 2


def loaded_after(imports: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The modules under ``prefixes`` that a fresh interpreter has loaded after importing ``imports``."""
    probe = f"import json, sys\nfor m in {imports!r}: __import__(m)\n" + (
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_the_api_process_does_not_import_the_signer_stack() -> None:
    # The API child holds no guardian key (build_responder(guardian=False)); eth_account and py_ecc
    # under it cost ~0.5 s per start.
    modules = [
        "breakglass.api.process",
        "breakglass.api.application",
        "breakglass.app",
        "breakglass.respond.build",
    ]
    assert loaded_after(modules, ("eth_account", "py_ecc", "breakglass.respond.signer")) == []


def test_the_cli_starts_without_the_configuration_models() -> None:
    # `breakglass --help` and every command's start pay for what cli.main imports; commands load more.
    assert loaded_after(["breakglass.cli.main"], ("breakglass.config", "eth_account", "fastapi")) == []
