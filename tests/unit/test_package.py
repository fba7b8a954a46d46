"""The package's shape: every module imports, says its job in a docstring, and exports what it names."""

from __future__ import annotations

import importlib
import pkgutil
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
