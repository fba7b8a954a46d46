"""Where the pinned chain toolchain lives: the project root, anvil, node and the solc-js package.

Nothing here downloads anything. The toolchain comes from the project's ``node_modules`` (installed by
``make setup`` from ``package-lock.json``), or, for anvil only, from ``PATH``.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from breakglass.errors import ToolchainError

__all__ = ["examples_dir", "find_anvil", "find_node", "node_modules", "project_root"]

_PACKAGE_NAME = '"name": "breakglass-chain-toolchain"'


def project_root() -> Path:
    """The folder holding ``package.json`` of the toolchain and ``contracts/``.

    ``BREAKGLASS_HOME`` wins; then the checkout this package was installed from (editable installs);
    then the current directory and its parents.
    """
    env = os.environ.get("BREAKGLASS_HOME")
    if env:
        return Path(env).resolve()
    candidates = [Path(__file__).resolve().parents[3], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for folder in candidates:
        manifest = folder / "package.json"
        if manifest.is_file() and _PACKAGE_NAME in manifest.read_text(encoding="utf-8"):
            return folder
    raise ToolchainError(
        "cannot find the breakglass project folder (package.json of 'breakglass-chain-toolchain'); "
        "run from the checkout or set BREAKGLASS_HOME"
    )


def examples_dir() -> Path:
    """The shipped examples: ``breakglass/examples`` inside an installed wheel, else the checkout's
    ``examples/`` (``project_root``)."""
    packaged = Path(__file__).resolve().parents[1] / "examples"
    if packaged.is_dir():
        return packaged
    return project_root() / "examples"


def node_modules() -> Path:
    folder = project_root() / "node_modules"
    if not folder.is_dir():
        raise ToolchainError(f"{folder} is missing: run `make setup` (npm ci) first")
    return folder


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    system = {"linux": "linux", "darwin": "darwin"}.get(platform.system().lower())
    if arch is None or system is None:
        raise ToolchainError(f"no anvil build for {platform.system()} {machine}")
    return f"@foundry-rs/anvil-{system}-{arch}"


def find_anvil() -> Path:
    """The anvil binary: ``BREAKGLASS_ANVIL``, the pinned npm package, then ``anvil`` on PATH."""
    env = os.environ.get("BREAKGLASS_ANVIL")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ToolchainError(f"BREAKGLASS_ANVIL={env} is not a file")
        return path
    try:
        pinned = node_modules() / _platform_package() / "bin" / "anvil"
        if pinned.is_file():
            return pinned
    except ToolchainError:
        pass
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise ToolchainError(
        "anvil not found: run `make setup` (installs the pinned @foundry-rs/anvil from npm), "
        "put anvil on PATH, or set BREAKGLASS_ANVIL"
    )


def find_node() -> Path:
    found = shutil.which("node")
    if not found:
        raise ToolchainError("node (Node.js >= 18) is required for solc-js and was not found on PATH")
    return Path(found)
