"""What a wheel needs besides the package's own files (everything else is in pyproject.toml).

A wheel must work without the repository and without Node.js, so building one adds, under
``breakglass/``:

- ``examples/``: the repository's ``examples/`` folder (configurations, playbooks, findings);
- ``deploy/``: Prometheus rules, the Grafana dashboard, systemd units (``docs/going-live.md``);
- ``devnet/prebuilt/contracts.json``: ``contracts/`` compiled by the pinned solc-js, so that drills
  deploy the reference venue without a compiler (``breakglass.devnet.solc.compile_contracts`` loads it
  when there is no checkout).

Compiling needs the development toolchain (``make setup``: node_modules). ``python -m build`` first
makes an sdist, which carries these files inside ``src/breakglass/``; the wheel built from it takes them
from there. Editable installs (``pip install -e``) add nothing: a checkout reads ``examples/`` and
compiles ``contracts/`` itself.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
COPIED = ("examples", "deploy")
BUNDLED = (*COPIED, "devnet/prebuilt/contracts.json")


def _compile() -> dict[str, object]:
    """``contracts/`` through ``breakglass.devnet.solc`` (stdlib only) without importing
    ``breakglass.devnet``'s ``__init__``, whose imports the isolated build environment lacks."""
    sys.path.insert(0, str(ROOT / "src"))
    package = types.ModuleType("breakglass.devnet")
    package.__path__ = [str(ROOT / "src" / "breakglass" / "devnet")]
    sys.modules.setdefault("breakglass.devnet", package)
    from breakglass.devnet.solc import compile_contracts

    build = compile_contracts(root=ROOT)
    cached = ROOT / ".breakglass" / "cache" / "solc" / f"{build.key}.json"
    return {"key": build.key, "result": json.loads(cached.read_text(encoding="utf-8"))}


def bundle(package_dir: Path) -> None:
    """Write the examples and the compiled contracts into ``package_dir`` (a ``breakglass`` folder)."""
    if all((package_dir / item).exists() for item in BUNDLED) and not (ROOT / "examples").is_dir():
        return  # building from an sdist: it carries them already
    for folder in COPIED:
        target = package_dir / folder
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(ROOT / folder, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    prebuilt = package_dir / "devnet" / "prebuilt"
    prebuilt.mkdir(parents=True, exist_ok=True)
    (prebuilt / "contracts.json").write_text(json.dumps(_compile()), encoding="utf-8")


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:
            bundle(Path(self.build_lib) / "breakglass")


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        bundle(Path(base_dir) / "src" / "breakglass")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
