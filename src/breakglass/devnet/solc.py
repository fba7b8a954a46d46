"""Solidity builds with the pinned solc-js, cached by a hash of the sources and compiler settings.

An unchanged source tree is never recompiled: the cache key covers every ``.sol`` file compiled, the
solc and OpenZeppelin versions pinned in ``node_modules``, and the compiler settings.

An installed wheel has no checkout and no Node.js: it carries ``contracts/`` compiled when the wheel
was built (``prebuilt/contracts.json``, written by ``setup.py``), which ``compile_contracts()`` returns
when no project folder is found.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from breakglass.devnet.toolchain import find_node, node_modules, project_root
from breakglass.errors import CompileError, ToolchainError

__all__ = [
    "DEFAULT_SETTINGS",
    "PREBUILT",
    "Artifact",
    "Build",
    "compile_contracts",
    "load_build",
    "load_prebuilt",
]

DEFAULT_SETTINGS: Mapping[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}

_RUNNER = Path(__file__).with_name("solcjs.cjs")
PREBUILT = Path(__file__).with_name("prebuilt") / "contracts.json"
"""``contracts/`` compiled at wheel-build time: ``{"key": ..., "result": <solc standard JSON output>}``."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@dataclass(frozen=True, slots=True)
class Build:
    """The result of one compile: artifacts by contract name, and whether it came from the cache."""

    key: str
    solc_version: str
    artifacts: Mapping[str, Artifact]
    cached: bool = False
    warnings: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> Artifact:
        try:
            return self.artifacts[name]
        except KeyError:
            known = ", ".join(sorted(self.artifacts))
            raise ToolchainError(f"no compiled contract {name!r} (known: {known})") from None


def _package_version(name: str) -> str:
    manifest = node_modules() / name / "package.json"
    if not manifest.is_file():
        raise ToolchainError(f"npm package {name} is not installed: run `make setup`")
    version = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    return str(version)


def _sources(root: Path, folders: list[str]) -> dict[str, str]:
    sources: dict[str, str] = {}
    for folder in folders:
        base = root / folder
        if not base.is_dir():
            raise ToolchainError(f"contract folder {base} does not exist")
        for path in sorted(base.rglob("*.sol")):
            sources[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
    if not sources:
        raise ToolchainError(f"no .sol files under {', '.join(folders)}")
    return sources


def _cache_key(sources: Mapping[str, str], settings: Mapping[str, Any], versions: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([versions, settings], sort_keys=True).encode())
    for name, text in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()


def compile_contracts(
    folders: list[str] | None = None,
    *,
    root: Path | None = None,
    cache_dir: Path | None = None,
    settings: Mapping[str, Any] = DEFAULT_SETTINGS,
) -> Build:
    """Compile every ``.sol`` file under ``folders`` (relative to the project root).

    Returns the cached build when nothing that affects the output changed; without a project folder
    (an installed wheel), the build of ``contracts/`` the wheel carries.
    """
    if root is None and folders is None and PREBUILT.is_file():
        try:
            project_root()
        except ToolchainError:
            return load_prebuilt()
    root = root or project_root()
    folders = folders or ["contracts"]
    cache_dir = cache_dir or root / ".breakglass" / "cache" / "solc"
    sources = _sources(root, folders)
    versions = [_package_version("solc"), _package_version("@openzeppelin/contracts")]
    key = _cache_key(sources, settings, versions)
    cached = cache_dir / f"{key}.json"
    if cached.is_file():
        return _decode(key, json.loads(cached.read_text(encoding="utf-8")), cached=True)

    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": dict(settings),
    }
    bases = [str(root), str(node_modules())]
    try:
        proc = subprocess.run(
            [str(find_node()), str(_RUNNER), json.dumps(bases)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError("solc-js did not finish within 900 s") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"solc-js failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    result = json.loads(proc.stdout)
    errors = [
        e.get("formattedMessage", e.get("message", "?"))
        for e in result["output"].get("errors", [])
        if e.get("severity") == "error"
    ]
    if errors:
        raise CompileError(errors)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # A file of this compile's own: concurrent compiles (pytest-xdist workers on a cold cache) would
    # otherwise write one shared temporary file, and the second rename would find it gone.
    fd, name = tempfile.mkstemp(dir=cache_dir, prefix=f"{key}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(result))
    Path(name).replace(cached)
    return _decode(key, result, cached=False)


def load_prebuilt(path: Path = PREBUILT) -> Build:
    """The build a wheel carries (``setup.py`` wrote it from the pinned solc-js)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return _decode(str(data["key"]), data["result"], cached=True)


def load_build(key_or_path: Path) -> Build:
    data = json.loads(key_or_path.read_text(encoding="utf-8"))
    return _decode(key_or_path.stem, data, cached=True)


def _decode(key: str, result: dict[str, Any], *, cached: bool) -> Build:
    artifacts: dict[str, Artifact] = {}
    output = result["output"]
    for source, contracts in output.get("contracts", {}).items():
        if source.startswith("@"):
            continue
        for name, data in contracts.items():
            if name in artifacts:
                raise ToolchainError(
                    f"contract name {name!r} is defined in both {artifacts[name].source} and {source}"
                )
            artifacts[name] = Artifact(
                name=name,
                source=source,
                abi=data["abi"],
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
            )
    warnings = tuple(
        e.get("formattedMessage", "") for e in output.get("errors", []) if e.get("severity") == "warning"
    )
    return Build(
        key=key,
        solc_version=str(result["version"]),
        artifacts=artifacts,
        cached=cached,
        warnings=warnings,
    )
